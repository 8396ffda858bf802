import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bearerToken, tokenMatches } from '../../src/auth.js';

test('only the exact token matches', () => {
  const token = 'k2J9xv-0123456789abcdef';
  assert.equal(tokenMatches(token, token), true);
  assert.equal(tokenMatches(`${token}x`, token), false);
  assert.equal(tokenMatches(token.slice(0, -1), token), false);
  assert.equal(tokenMatches('', token), false);
  assert.equal(tokenMatches(undefined, token), false);
});

test('the bearer token is read from the Authorization header', () => {
  assert.equal(bearerToken('Bearer abc.def'), 'abc.def');
  assert.equal(bearerToken('bearer   abc'), 'abc');
  assert.equal(bearerToken('Basic abc'), undefined);
  assert.equal(bearerToken('Bearer a b'), undefined);
  assert.equal(bearerToken(undefined), undefined);
});
