package stats;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class AverageTest {
    @Test
    void meanOfTwoOddNumbers() {
        assertEquals(2.5, Average.mean(new int[] {2, 3}), 1e-9);
    }

    @Test
    void meanOfOne() {
        assertEquals(7.0, Average.mean(new int[] {7}), 1e-9);
    }
}
