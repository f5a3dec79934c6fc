/**
 * Cell sources for a model: which magic runs it, a ready cell, and adding it to a `-m` list.
 *
 * Pure string functions, so they are tested without a browser (see `test/magic.test.mjs`).
 */
import type { IModelInfo, ModelKind } from './api';

/** How a model kind is run from a notebook cell. */
export interface IMagic {
  /** The magic that starts the cell, e.g. `%%chat`. */
  magic: string;
  /** Whether `-m a,b` compares models side by side (otherwise `-m` takes one id). */
  compares: boolean;
  /** What follows `-m ID` on the magic line. */
  args: string;
  /** The cell body of a ready cell: a prompt that runs as it is. */
  body: string;
}

const BY_KIND: Record<ModelKind, IMagic> = {
  chat: { magic: '%%chat', compares: true, args: '', body: 'Say hello in one sentence.' },
  image: { magic: '%%image', compares: true, args: '', body: 'a lighthouse at dawn, watercolour' },
  video: { magic: '%%video', compares: false, args: '', body: 'a paper boat on a rainy street' },
  audio: { magic: '%%speak', compares: false, args: '', body: 'Hello from Tokenhot.' }
};

// Families whose kind alone does not say which magic runs them.
const BY_FAMILY: Record<string, IMagic> = {
  whisper: { magic: '%transcribe', compares: false, args: ' speech.wav', body: '' }
};

const MODEL_OPTION = /(^|\s)(-m|--model)(=|\s+)("[^"]*"|'[^']*'|\S+)/;

/** The magic that runs `model`. */
export function magicFor(model: Pick<IModelInfo, 'kind' | 'family'>): IMagic {
  return BY_FAMILY[model.family] ?? BY_KIND[model.kind];
}

/** A cell that runs `model` as it is. */
export function readyCell(model: Pick<IModelInfo, 'id' | 'kind' | 'family'>): string {
  const { magic, args, body } = magicFor(model);
  const line = `${magic} -m ${model.id}${args}`;
  return body ? `${line}\n${body}` : line;
}

/** Whether the cell `source` starts with `magic` (`%%chat`, but not `%%chatty`). */
export function startsWithMagic(source: string, magic: string): boolean {
  const first = source.split('\n', 1)[0];
  return first === magic || first.startsWith(magic + ' ') || first.startsWith(magic + '\t');
}

/**
 * `source` with `id` added to its magic line's `-m` list (or put in place of the one model
 * when the magic compares none); `null` when the id is already there.
 */
export function addModel(source: string, magic: IMagic, id: string): string | null {
  const newline = source.indexOf('\n');
  const first = newline < 0 ? source : source.slice(0, newline);
  const rest = newline < 0 ? '' : source.slice(newline);
  const found = MODEL_OPTION.exec(first);
  if (!found) {
    return `${magic.magic} -m ${id}${first.slice(magic.magic.length)}${rest}`;
  }
  const ids = found[4]
    .replace(/^["']|["']$/g, '')
    .split(',')
    .filter(Boolean);
  if (ids.includes(id)) {
    return null;
  }
  const list = magic.compares ? [...ids, id].join(',') : id;
  const option = `${found[1]}${found[2]}${found[3]}${list}`;
  return first.slice(0, found.index) + option + first.slice(found.index + found[0].length) + rest;
}
