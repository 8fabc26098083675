/**
 * No Docker engine runs here, so docker-compose.yml is checked by reading it: every member's
 * command points at a real entry point, its environment passes that member's configuration
 * schema (secrets substituted with test values), its volumes are declared, and only the gateway's
 * member port and the municipalities' staff ports are published.
 */
import { expect } from 'chai';
import { existsSync, readFileSync } from 'node:fs';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { parse } from 'yaml';
import { municipalityConfigSchema } from '../../services/municipality/config.ts';
import { gatewayConfigSchema } from '../../gateway/config.ts';
import { issuerConfigSchema } from '../../services/issuer/config.ts';

interface Service {
  command?: string[];
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: (string | { source: string; target: string; read_only?: boolean; volume?: { subpath?: string } })[];
  healthcheck?: { test: string[] };
  profiles?: string[];
  depends_on?: Record<string, unknown>;
}

const compose = parse(readFileSync('docker-compose.yml', 'utf8'), { merge: true }) as { services: Record<string, Service>; volumes: Record<string, unknown> };
const postgresOverride = parse(readFileSync('docker-compose.postgres.yml', 'utf8'), { merge: true }) as { services: Record<string, Service> };

/** Compose's merge of an override file: environment and depends_on maps merge, other keys replace. */
function withOverride(base: Record<string, Service>, override: Record<string, Service>): Record<string, Service> {
  const out: Record<string, Service> = { ...base };
  for (const [name, o] of Object.entries(override)) {
    const b = base[name] ?? {};
    out[name] = { ...b, ...o, environment: { ...b.environment, ...o.environment }, depends_on: { ...b.depends_on, ...o.depends_on } };
  }
  return out;
}

/**
 * Compose's ${VAR:?message} with a value the schemas accept: a fresh 32-byte key, or for a
 * certificate signing key a fresh EC P-256 key as PKCS#8 PEM.
 */
function substitute(env: Record<string, string>): Record<string, string> {
  const out: Record<string, string> = {};
  const fresh = (name: string) => (name.endsWith('SHC_SIGNING_KEY')
    ? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()
    : randomBytes(32).toString('hex'));
  for (const [k, v] of Object.entries(env)) out[k] = String(v).replace(/\$\{([A-Z0-9_]+):\?[^}]*\}/g, (_m, name: string) => fresh(name));
  return out;
}

const SCHEMAS: Record<string, { schema: { safeParse(v: unknown): { success: boolean; error?: unknown } } }> = {
  'services/issuer/main.ts': { schema: issuerConfigSchema },
  'gateway/main.ts': { schema: gatewayConfigSchema },
  'services/municipality/main.ts': { schema: municipalityConfigSchema },
};

describe('docker-compose.yml', () => {
  const members = Object.entries(compose.services).filter(([, s]) => s.command?.includes('--import') && s.command.some((c) => c.endsWith('main.ts')));

  it('when read, then it has the issuer, the gateway, three municipalities, a one-shot PKI job and PostgreSQL under a profile', () => {
    expect(Object.keys(compose.services)).to.include.members(['pki', 'issuer', 'gateway', 'tawaramoto', 'akiota', 'toda', 'postgres']);
    expect(compose.services.postgres!.profiles).to.deep.equal(['postgres']);
    expect(members).to.have.length(5);
  });

  for (const [name, service] of Object.entries(compose.services).filter(([, s]) => s.command?.some((c) => c.endsWith('main.ts')))) {
    describe(name, () => {
      const entry = service.command!.find((c) => c.endsWith('main.ts'))!;

      it('when started, then its entry point exists', () => {
        expect(existsSync(entry), entry).to.equal(true);
      });

      it('when its environment is parsed by the member\'s configuration schema, then it is valid', () => {
        const result = SCHEMAS[entry]!.schema.safeParse(substitute(service.environment ?? {}));
        expect(result.success, JSON.stringify(result.error)).to.equal(true);
      });

      it('when a secret is missing from .env, then compose refuses to start (no default secrets)', () => {
        for (const [key, value] of Object.entries(service.environment ?? {})) {
          if (/KEY|SECRET|PASSWORD/.test(key)) expect(value, key).to.match(/^\$\{[A-Z0-9_]+:\?/);
        }
      });

      it('when deployed, then it mounts only its own PKI folder (never the CA key) and declared volumes, and has a health check', () => {
        expect(service.healthcheck?.test?.length).to.be.greaterThan(0);
        expect(service.depends_on).to.have.property('pki');
        for (const v of service.volumes ?? []) {
          const source = typeof v === 'string' ? v.split(':')[0]! : v.source;
          expect(compose.volumes, source).to.have.property(source);
          if (typeof v !== 'string' && v.source === 'pki') {
            expect(v.read_only).to.equal(true);
            expect(v.volume?.subpath).to.be.oneOf([name === 'gateway' ? 'gateway' : undefined, 'public', 'issuer', service.environment?.MUNICIPALITY_CODE].filter(Boolean));
          }
          if (typeof v === 'string') expect(v.startsWith('pki:'), 'whole pki volume mounted').to.equal(false);
        }
      });

      it('when published, then only the gateway\'s member port or a municipality\'s staff port is exposed', () => {
        const env = service.environment ?? {};
        for (const mapping of service.ports ?? []) {
          const container = mapping.split(':').pop();
          if (entry === 'gateway/main.ts') expect(container).to.equal(env.PORT);
          else if (entry === 'services/municipality/main.ts') expect(container).to.equal(env.PORT);
          else expect.fail(`${name} must not publish ports`);
        }
      });
    });
  }

  it('when a municipality is reached by the gateway, then its network alias is its code (the name in its TLS certificate)', () => {
    for (const name of ['tawaramoto', 'akiota', 'toda']) {
      const s = compose.services[name] as Service & { networks?: { default?: { aliases?: string[] } } };
      expect(s.networks?.default?.aliases).to.include(s.environment!.MUNICIPALITY_CODE);
    }
  });

  describe('with docker-compose.postgres.yml', () => {
    const merged = withOverride(compose.services, postgresOverride.services);
    const provision = merged['db-provision']!;
    const provisioned = new Map(provision.command!.flatMap((arg, i, all) => (all[i - 1] === '--member' ? [arg.split('=') as [string, string]] : [])));

    it('when merged, then every member\'s environment still passes its schema, now with a postgres:// DATABASE_URL', () => {
      for (const [name, service] of Object.entries(merged).filter(([, s]) => s.command?.some((c) => c.endsWith('main.ts')))) {
        const entry = service.command!.find((c) => c.endsWith('main.ts'))!;
        const parsed = SCHEMAS[entry]!.schema.safeParse(substitute(service.environment ?? {}));
        expect(parsed.success, `${name}: ${JSON.stringify(parsed.error)}`).to.equal(true);
        expect(service.environment?.DATABASE_URL, name).to.match(/^postgres:\/\/hikitsugi_[a-z0-9]+:\$\{[A-Z_]+_DB_PASSWORD:\?[^}]*\}@postgres:5432\/hikitsugi_[a-z0-9]+$/);
      }
    });

    it('when started, then each member waits for db-provision, which made exactly its role and database with the password it connects with', () => {
      expect(provision.profiles).to.deep.equal(['postgres']);
      expect(provision.command).to.include('scripts/db-provision.ts');
      expect(existsSync('scripts/db-provision.ts')).to.equal(true);
      expect(provision.depends_on).to.have.nested.property('postgres.condition', 'service_healthy');
      const members = Object.entries(merged).filter(([, s]) => s.command?.some((c) => c.endsWith('main.ts')));
      expect(provisioned.size).to.equal(members.length);
      for (const [name, service] of members) {
        const env = service.environment!;
        const member = env.MUNICIPALITY_CODE ?? name;
        const url = env.DATABASE_URL!;
        const passwordEnv = /\$\{([A-Z_]+):\?/.exec(url)![1]!;
        expect(provisioned.get(member), `${name} provisioned`).to.equal(passwordEnv);
        expect(url).to.contain(`hikitsugi_${member}:`).and.to.contain(`/hikitsugi_${member}`);
        expect(provision.environment?.[passwordEnv], passwordEnv).to.match(/^\$\{[A-Z_]+:\?/);
        expect(service.depends_on).to.have.nested.property('db-provision.condition', 'service_completed_successfully');
        expect(service.depends_on).to.have.property('pki');
      }
      expect(provision.environment?.DATABASE_ADMIN_URL).to.match(/^postgres:\/\/postgres:\$\{POSTGRES_PASSWORD:\?[^}]*\}@postgres:5432\/postgres$/);
    });
  });
});
