/**
 * Reads docker-compose.yml and the Dockerfile the way a container engine would use them, so a
 * test can run the Gatewatch services of the stack as local processes (no engine runs on our
 * machines): each service's entry point + command, its environment after compose variable
 * interpolation, its healthcheck, and its container ports.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';

export interface ComposeService {
  name: string;
  /** Built from the repository's Dockerfile (a Gatewatch process) rather than an image. */
  built: boolean;
  command: string[];
  environment: Record<string, string>;
  /** Healthcheck `test` in exec form, without the leading "CMD". */
  healthcheck?: string[];
  /** Ports the container listens on (the right-hand side of each `ports` entry). */
  containerPorts: number[];
}

export interface ComposeStack {
  services: ComposeService[];
  /** Dockerfile ENTRYPOINT (exec form). */
  entrypoint: string[];
  /** Dockerfile ENV settings. */
  imageEnv: Record<string, string>;
  /** Top-level directories the Dockerfile copies into the image. */
  copied: string[];
}

/** Compose interpolation: ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$. */
export function interpolate(text: string, vars: Record<string, string | undefined>): string {
  return text.replace(
    /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
    (match, braced?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (match === '$$') return '$';
      const name = braced ?? bare!;
      const value = vars[name];
      const missing = value === undefined || (colon === ':' && value === '');
      if (op === '-') return missing ? arg! : value!;
      if (op === '?') {
        if (missing) throw new Error(`required variable ${name} is missing a value: ${arg}`);
        return value!;
      }
      return value ?? '';
    },
  );
}

function interpolateDeep(value: unknown, vars: Record<string, string | undefined>): unknown {
  if (typeof value === 'string') return interpolate(value, vars);
  if (Array.isArray(value)) return value.map((v) => interpolateDeep(v, vars));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, interpolateDeep(v, vars)]));
  return value;
}

/** "127.0.0.1:8080:8080", "8080:8080/udp", "8080" → the container port. */
function containerPort(spec: string): number {
  const withoutProtocol = spec.split('/')[0]!;
  return Number(withoutProtocol.split(':').at(-1));
}

export function readComposeStack(root: string, vars: Record<string, string | undefined>): ComposeStack {
  const compose = parse(readFileSync(join(root, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<string, Record<string, unknown>>;
  };
  const resolved = interpolateDeep(compose, vars) as typeof compose;
  const services = Object.entries(resolved.services).map(([name, s]): ComposeService => {
    const env = (s.environment ?? {}) as Record<string, unknown>;
    const test = (s.healthcheck as { test?: string[] } | undefined)?.test;
    return {
      name,
      built: s.build !== undefined,
      command: ((s.command as string[] | undefined) ?? []).map(String),
      environment: Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)])),
      ...(test && test[0] === 'CMD' ? { healthcheck: test.slice(1) } : {}),
      containerPorts: [...new Set(((s.ports as string[] | undefined) ?? []).map(containerPort))],
    };
  });
  const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');
  const entrypoint = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile);
  if (!entrypoint) throw new Error('Dockerfile has no exec-form ENTRYPOINT');
  const imageEnv: Record<string, string> = {};
  for (const m of dockerfile.matchAll(/^ENV\s+([A-Za-z_][A-Za-z0-9_]*)=(\S+)\s*$/gm)) imageEnv[m[1]!] = m[2]!;
  const copied = [...dockerfile.matchAll(/^COPY\s+(\S+)\s+\.\/\S+\s*$/gm)].map((m) => m[1]!);
  return { services, entrypoint: JSON.parse(entrypoint[1]!) as string[], imageEnv, copied };
}
