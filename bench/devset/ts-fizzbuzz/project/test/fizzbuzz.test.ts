import { describe, expect, it } from "vitest";
import { fizzbuzz, sequence } from "../src/fizzbuzz";

describe("fizzbuzz", () => {
  it("says FizzBuzz for multiples of 15", () => {
    expect(fizzbuzz(30)).toBe("FizzBuzz");
  });

  it("counts to 15", () => {
    expect(sequence(15).at(-1)).toBe("FizzBuzz");
    expect(sequence(5)).toEqual(["1", "2", "Fizz", "4", "Buzz"]);
  });
});
