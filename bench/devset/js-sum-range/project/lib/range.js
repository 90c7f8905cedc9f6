/** The sum of the whole numbers from 1 to n, both included. */
function sumTo(n) {
  let total = 0;
  for (let i = 1; i < n; i++) {
    total += i;
  }
  return total;
}

module.exports = { sumTo };
