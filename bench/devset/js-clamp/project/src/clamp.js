/** Limit `value` to the range [low, high]. */
function clamp(value, low, high) {
  return Math.min(low, Math.max(value, high));
}

function clampAll(values, low, high) {
  return values.map((value) => clamp(value, low, high));
}

module.exports = { clamp, clampAll };
