const test = require('node:test');
const assert = require('node:assert');
const { titleCase } = require('../src/text');

test('every word starts with a capital', () => {
  assert.strictEqual(titleCase('hello small world'), 'Hello Small World');
});

test('an empty sentence stays empty', () => {
  assert.strictEqual(titleCase(''), '');
});
