export function fizzbuzz(n: number): string {
  if (n % 3 === 0) return "Fizz";
  if (n % 5 === 0) return "Buzz";
  if (n % 15 === 0) return "FizzBuzz";
  return String(n);
}

export function sequence(count: number): string[] {
  return Array.from({ length: count }, (_, index) => fizzbuzz(index + 1));
}
