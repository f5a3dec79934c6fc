// The cell-source helpers of src/magic.ts (compiled to lib/magic.js), under node's test runner.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

// lib/ is ES module code in a package without "type": "module"; magic.js imports nothing.
const source = readFileSync(new URL('../../lib/magic.js', import.meta.url), 'utf8');
const { addModel, magicFor, readyCell, startsWithMagic } = await import(
  'data:text/javascript,' + encodeURIComponent(source)
);

const chat = { id: 'claude-opus-4-6', kind: 'chat', family: 'anthropic' };
const video = { id: 'sora-2', kind: 'video', family: 'sora' };
const whisper = { id: 'whisper-1', kind: 'audio', family: 'whisper' };
const tts = { id: 'tts-1', kind: 'audio', family: 'openai-tts' };

test('a ready cell per kind, the family deciding where the kind does not', () => {
  assert.equal(readyCell(chat), '%%chat -m claude-opus-4-6\nSay hello in one sentence.');
  assert.equal(readyCell(video), '%%video -m sora-2\na paper boat on a rainy street');
  assert.equal(readyCell(tts), '%%speak -m tts-1\nHello from Tokenhot.');
  assert.equal(readyCell(whisper), '%transcribe -m whisper-1 speech.wav');
});

test('startsWithMagic wants the whole magic name', () => {
  assert.ok(startsWithMagic('%%chat -m a\nhi', '%%chat'));
  assert.ok(startsWithMagic('%%chat', '%%chat'));
  assert.ok(!startsWithMagic('%%chatty -m a', '%%chat'));
  assert.ok(!startsWithMagic('x = 1\n%%chat', '%%chat'));
});

test('a comparing magic gains the id at the end of its -m list', () => {
  const magic = magicFor(chat);
  assert.equal(
    addModel('%%chat -m gpt-5.4\nhi', magic, chat.id),
    '%%chat -m gpt-5.4,claude-opus-4-6\nhi'
  );
  assert.equal(
    addModel('%%chat --model=a,b --new\nhi', magic, 'c'),
    '%%chat --model=a,b,c --new\nhi'
  );
  assert.equal(addModel('%%chat -m "a,b"\nhi', magic, 'c'), '%%chat -m a,b,c\nhi');
});

test('a magic line without -m gets one; an id already listed changes nothing', () => {
  const magic = magicFor(chat);
  assert.equal(addModel('%%chat --new\nhi', magic, 'a'), '%%chat -m a --new\nhi');
  assert.equal(addModel('%%chat', magic, 'a'), '%%chat -m a');
  assert.equal(addModel('%%chat -m a,b\nhi', magic, 'b'), null);
});

test('a single-model magic has its model replaced', () => {
  assert.equal(
    addModel('%%video -m veo --duration 5\nboat', magicFor(video), 'sora-2'),
    '%%video -m sora-2 --duration 5\nboat'
  );
});

test('only the magic line is read: -m in the prompt is left alone', () => {
  assert.equal(
    addModel('%%chat\nexplain -m flags', magicFor(chat), 'a'),
    '%%chat -m a\nexplain -m flags'
  );
});
