import { describe, expect, it } from 'vitest';
import { describeSplit, other, servingColours, textBar, weightsFor } from '../../src/releases/weights.js';

describe('other', () => {
  it('is the opposite colour', () => {
    expect(other('blue')).toBe('green');
    expect(other('green')).toBe('blue');
  });
});

describe('weightsFor', () => {
  it('gives the percentage to the named colour and the rest to the other', () => {
    expect(weightsFor('green', 10)).toEqual({ blue: 90, green: 10 });
    expect(weightsFor('blue', 10)).toEqual({ blue: 10, green: 90 });
  });

  it('moves everything at 100 and nothing at 0', () => {
    expect(weightsFor('green', 100)).toEqual({ blue: 0, green: 100 });
    expect(weightsFor('green', 0)).toEqual({ blue: 100, green: 0 });
  });

  it('always sums to 100', () => {
    for (const colour of ['blue', 'green'] as const)
      for (const p of [0, 1, 33, 50, 99, 100]) {
        const w = weightsFor(colour, p);
        expect(w.blue + w.green).toBe(100);
        expect(w[colour]).toBe(p);
      }
  });
});

describe('textBar and describeSplit', () => {
  it('fills one block per 10% and right-aligns the number', () => {
    expect(textBar(0)).toBe('░░░░░░░░░░   0%');
    expect(textBar(50)).toBe('█████░░░░░  50%');
    expect(textBar(100)).toBe('██████████ 100%');
    expect(textBar(14)).toBe('█░░░░░░░░░  14%');
    expect(textBar(15)).toBe('██░░░░░░░░  15%');
  });

  it('shows both colours, blue first, as code spans', () => {
    expect(describeSplit({ blue: 90, green: 10 })).toBe('blue `█████████░  90%` · green `█░░░░░░░░░  10%`');
  });
});

describe('servingColours', () => {
  it('lists only the colours that get traffic', () => {
    expect(servingColours({ blue: 100, green: 0 })).toEqual(['blue']);
    expect(servingColours({ blue: 0, green: 100 })).toEqual(['green']);
    expect(servingColours({ blue: 50, green: 50 })).toEqual(['blue', 'green']);
  });
});
