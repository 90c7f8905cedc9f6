export interface Reading {
  label: string;
  value: number;
}

export function indexOfMax(values: number[]): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) {
    if (values[i] < values[best]) {
      best = i;
    }
  }
  return best;
}

export function peak(readings: Reading[]): string {
  return readings[indexOfMax(readings.map((reading) => reading.value))].label;
}
