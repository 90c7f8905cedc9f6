/// n! for small n.
pub fn factorial(n: u64) -> u64 {
    (1..n).product()
}

pub fn choose(n: u64, k: u64) -> u64 {
    factorial(n) / (factorial(k) * factorial(n - k))
}
