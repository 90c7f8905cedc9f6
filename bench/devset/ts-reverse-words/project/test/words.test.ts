import { expect, test } from "vitest";
import { reverseWords } from "../src/words";

test("the words come in reverse order", () => {
  expect(reverseWords("one two three")).toBe("three two one");
});

test("one word stays as it is", () => {
  expect(reverseWords("alone")).toBe("alone");
});
