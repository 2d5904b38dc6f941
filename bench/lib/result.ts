/** What each scenario hands back: table rows for people, raw figures for the JSON. */
export interface Row {
  scenario: string;
  flightdeck: string;
  baseline: string;
  ratio: string;
  target: string;
  /** undefined when the row has no target of its own (context for another row). */
  met?: boolean;
}

export interface ScenarioResult {
  id: string;
  rows: Row[];
  raw: Record<string, unknown>;
  seconds?: number;
  error?: string;
}

export const ms = (x: number) => `${Math.round(x * 10) / 10} ms`;
export const times = (x: number) => `×${Math.round(x * 100) / 100}`;
