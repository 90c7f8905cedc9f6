const test = require('node:test');
const assert = require('node:assert');
const { clamp, clampAll } = require('../src/clamp');

test('a value inside the range is kept', () => {
  assert.strictEqual(clamp(5, 0, 10), 5);
});

test('values outside the range go to its ends', () => {
  assert.deepStrictEqual(clampAll([-3, 12], 0, 10), [0, 10]);
});
