const { sumTo } = require('./range');

function describe(n) {
  return `1..${n} adds up to ${sumTo(n)}`;
}

module.exports = { describe };
