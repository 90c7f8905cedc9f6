import { expect, test } from "vitest";
import { peak } from "../src/maxima";

test("the peak is the reading with the largest value", () => {
  expect(peak([{ label: "a", value: 3 }, { label: "b", value: 9 }, { label: "c", value: 1 }]))
    .toBe("b");
});
