import { describe, expect, it } from 'vitest';
import {
  renderUpstreams,
  servingInFile,
  takesServersOut,
  type Upstream,
} from '../../src/integrations/nginx.js';

const web = (blue: number, green: number, name = 'fd_prod_web'): Upstream => ({
  name,
  servers: [
    { colour: 'blue', address: '127.0.0.1:9001', weight: blue },
    { colour: 'green', address: '127.0.0.1:9002', weight: green },
  ],
});
const file = (...u: Upstream[]) => renderUpstreams(u, 'g1', '127.0.0.1:9999');

describe('after a reload, waiting for nginx to stop its old workers', () => {
  it('reads which servers take traffic from the file flightdeck rendered', () => {
    expect([...(servingInFile(file(web(90, 10), web(100, 0, 'fd_prod_api'))) ?? [])].sort()).toEqual([
      'fd_prod_api 127.0.0.1:9001',
      'fd_prod_web 127.0.0.1:9001',
      'fd_prod_web 127.0.0.1:9002',
    ]);
    expect(servingInFile('upstream x {\n    server 127.0.0.1:1 weight=1;\n}\n')).toBeUndefined();
  });

  it('waits where a server stops taking traffic: the step to 100%, a rollback', () => {
    expect(takesServersOut(servingInFile(file(web(50, 50))), [web(0, 100)])).toBe(true);
    expect(takesServersOut(servingInFile(file(web(90, 10))), [web(100, 0)])).toBe(true);
  });

  it('does not wait where weight only moves between servers that keep serving, or a server joins', () => {
    expect(takesServersOut(servingInFile(file(web(90, 10))), [web(50, 50)])).toBe(false);
    expect(takesServersOut(servingInFile(file(web(100, 0))), [web(90, 10)])).toBe(false);
  });

  it('waits when what nginx served before is not known (no file, or one it did not render)', () => {
    expect(takesServersOut(undefined, [web(90, 10)])).toBe(true);
  });

  it('waits when a service leaves the file', () => {
    expect(takesServersOut(servingInFile(file(web(50, 50), web(100, 0, 'fd_prod_api'))), [web(50, 50)])).toBe(
      true,
    );
  });
});
