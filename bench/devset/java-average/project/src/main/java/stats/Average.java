package stats;

public final class Average {
    private Average() {}

    public static double mean(int[] values) {
        int sum = 0;
        for (int value : values) {
            sum += value;
        }
        return sum / values.length;
    }
}
