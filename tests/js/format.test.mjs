// The number formatting of src/format.ts (compiled to lib/format.js), under node's test runner.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

// lib/ is ES module code in a package without "type": "module"; format.js imports only types.
const source = readFileSync(new URL('../../lib/format.js', import.meta.url), 'utf8');
const { duration, money } = await import('data:text/javascript,' + encodeURIComponent(source));

test('sums from a cent up are in cents', () => {
  assert.equal(money(0.42, 'USD'), '$0.42');
  assert.equal(money(4.2, 'USD'), '$4.20');
  assert.equal(money(0.01, 'USD'), '$0.01');
  assert.equal(money(0, 'USD'), '$0.00');
});

test('a sum below a cent keeps two significant digits instead of reading $0.00', () => {
  assert.equal(money(0.0031, 'USD'), '$0.0031');
  assert.equal(money(0.000412, 'USD'), '$0.00041');
});

test('a currency Intl does not know is written after the number', () => {
  assert.equal(money(1.5, 'NOT-A-CODE'), '1.50 NOT-A-CODE');
  assert.equal(money(0.0031, 'NOT-A-CODE'), '0.0031 NOT-A-CODE');
});

test('durations', () => {
  assert.equal(duration(42), '42s');
  assert.equal(duration(185), '3m 05s');
  assert.equal(duration(3720), '1h 02m');
});
