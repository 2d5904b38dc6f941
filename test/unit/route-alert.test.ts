import { describe, expect, it } from 'vitest';
import { alertTarget, isCritical, mentions, routeAlert, severityKey } from '../../src/alerts/route-alert.js';
import { unitConfig } from './helpers.js';

describe('routeAlert', () => {
  const config = unitConfig((raw) => {
    raw.alerts = {
      defaultChannel: 'C0DEFAULT',
      routes: [
        { match: { severity: 'critical', environment: 'production' }, channel: 'C0ONCALL' },
        { match: { environment: 'production' }, channel: 'C0PRODALERTS' },
        { match: { team: 'payments' }, channel: 'C0PAYMENTS' },
      ],
    };
  });

  it('sends an alert to the first route whose labels all match', () => {
    expect(routeAlert({ severity: 'critical', environment: 'production', team: 'payments' }, config)).toBe(
      'C0ONCALL',
    );
    expect(routeAlert({ severity: 'warning', environment: 'production', team: 'payments' }, config)).toBe(
      'C0PRODALERTS',
    );
    expect(routeAlert({ severity: 'critical', environment: 'staging', team: 'payments' }, config)).toBe(
      'C0PAYMENTS',
    );
  });

  it('needs every label of a route, with the exact value', () => {
    expect(routeAlert({ severity: 'critical' }, config)).toBe('C0DEFAULT');
    expect(routeAlert({ environment: 'Production' }, config)).toBe('C0DEFAULT');
  });

  it('uses alerts.defaultChannel when no route matches', () => {
    expect(routeAlert({}, config)).toBe('C0DEFAULT');
  });

  it('falls back to channels.alerts, then channels.releases, without a default channel', () => {
    expect(routeAlert({}, unitConfig())).toBe('C0ALERTS');
    const noAlerts = unitConfig((raw) => {
      raw.channels = { releases: 'C0RELEASES' };
    });
    expect(routeAlert({}, noAlerts)).toBe('C0RELEASES');
  });

  it('is not fooled by a route label that names an Object.prototype member', () => {
    const proto = unitConfig((raw) => {
      raw.alerts = { routes: [{ match: { constructor: 'x' }, channel: 'C0PROTO' }] };
    });
    expect(routeAlert({}, proto)).toBe('C0ALERTS');
    expect(routeAlert({ constructor: 'x' }, proto)).toBe('C0PROTO');
  });
});

describe('alertTarget', () => {
  const config = unitConfig();

  it('names the configured environment and service from the alert’s labels', () => {
    expect(alertTarget({ environment: 'production', service: 'web', alertname: 'X' }, config)).toEqual({
      environment: 'production',
      service: 'web',
    });
  });

  it('is undefined when a label is missing or empty', () => {
    expect(alertTarget({ service: 'api' }, config)).toBeUndefined();
    expect(alertTarget({ environment: 'staging' }, config)).toBeUndefined();
    expect(alertTarget({ environment: '', service: 'api' }, config)).toBeUndefined();
  });

  it('is undefined for an environment or service that is not configured', () => {
    expect(alertTarget({ environment: 'qa', service: 'api' }, config)).toBeUndefined();
    expect(alertTarget({ environment: 'staging', service: 'billing' }, config)).toBeUndefined();
    // Names are exact: no case folding for label values.
    expect(alertTarget({ environment: 'Staging', service: 'api' }, config)).toBeUndefined();
  });

  it('is not fooled by labels naming Object.prototype members', () => {
    for (const [environment, service] of [
      ['__proto__', 'api'],
      ['constructor', 'api'],
      ['staging', '__proto__'],
      ['staging', 'constructor'],
      ['staging', 'toString'],
      ['hasOwnProperty', 'hasOwnProperty'],
    ])
      expect(
        alertTarget({ environment, service } as Record<string, string>, config),
        `${environment}/${service}`,
      ).toBeUndefined();
  });

  it('is not fooled by an alert lacking a label named like an Object.prototype member', () => {
    const odd = unitConfig((raw) => {
      raw.alerts = { environmentLabel: 'constructor', serviceLabel: 'toString' };
    });
    expect(alertTarget({}, odd)).toBeUndefined();
    expect(alertTarget({ constructor: 'staging', toString: 'api' }, odd)).toEqual({
      environment: 'staging',
      service: 'api',
    });
  });

  it('reads the labels named by alerts.environmentLabel and alerts.serviceLabel', () => {
    const custom = unitConfig((raw) => {
      raw.alerts = { environmentLabel: 'env', serviceLabel: 'app' };
    });
    expect(alertTarget({ env: 'staging', app: 'web' }, custom)).toEqual({
      environment: 'staging',
      service: 'web',
    });
    expect(alertTarget({ environment: 'staging', service: 'web' }, custom)).toBeUndefined();
  });
});

describe('isCritical', () => {
  it('is true for severity critical in any case, and nothing else', () => {
    expect(isCritical({ severity: 'critical' })).toBe(true);
    expect(isCritical({ severity: 'CRITICAL' })).toBe(true);
    expect(isCritical({ severity: 'warning' })).toBe(false);
    expect(isCritical({ severity: 'critical-ish' })).toBe(false);
    expect(isCritical({})).toBe(false);
  });
});

describe('severityKey', () => {
  it('lower-cases and trims, and calls a missing or empty severity none', () => {
    expect(severityKey('critical')).toBe('critical');
    expect(severityKey(' Critical ')).toBe('critical');
    expect(severityKey('WARNING')).toBe('warning');
    expect(severityKey(undefined)).toBe('none');
    expect(severityKey('  ')).toBe('none');
  });

  it('keeps common custom severities, unlike the bounded metric label', () => {
    expect(severityKey('page')).toBe('page');
    expect(severityKey('P1')).toBe('p1');
    expect(severityKey('sev-2')).toBe('sev-2');
    expect(severityKey('x'.repeat(32))).toBe('x'.repeat(32));
  });

  it('calls anything that is not a short plain word, or is an Object.prototype name, other', () => {
    for (const s of [
      '<!channel>',
      '<@U0LEAD>',
      'two words',
      'x'.repeat(33),
      'crit*',
      'constructor',
      '__proto__',
    ]) {
      expect(severityKey(s)).toBe('other');
    }
    expect(isCritical({ severity: ' critical ' })).toBe(true);
  });
});

describe('mentions', () => {
  it('mentions users as <@U…> and user groups as <!subteam^S…>', () => {
    expect(mentions(['U0LEAD', 'S0ONCALL', 'W0OTHER'])).toBe('<@U0LEAD> <!subteam^S0ONCALL> <@W0OTHER>');
  });

  it('is empty for nobody', () => {
    expect(mentions([])).toBe('');
  });
});
