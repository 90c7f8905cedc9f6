const test = require('node:test');
const assert = require('node:assert');
const { describe } = require('../lib/report');

test('the sum of 1 to 4', () => {
  assert.strictEqual(describe(4), '1..4 adds up to 10');
});

test('the sum of 1 to 1', () => {
  assert.strictEqual(describe(1), '1..1 adds up to 1');
});
