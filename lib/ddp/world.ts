/** Where this process sits in a data-parallel job, and how its peers are found. */
export interface World {
  rank: number;
  worldSize: number;
  /** Index among the workers on this machine (picks the GPU). */
  localRank: number;
  /** Workers on this machine (share its cores), 1 when the launcher does not say. */
  localWorldSize: number;
  /** Host and port of rank 0's rendezvous listener. */
  masterAddr: string;
  masterPort: number;
  /** Who started the processes: read from the variables each launcher sets. */
  launcher: 'single' | 'builtin' | 'torchrun' | 'openmpi' | 'slurm';
}

export class WorldError extends Error {
  override name = 'WorldError';
}

export const DEFAULT_MASTER_ADDR = '127.0.0.1';
export const DEFAULT_MASTER_PORT = 29500;

type Env = Record<string, string | undefined>;

function intVar(env: Env, name: string, min: number): number {
  const raw = env[name];
  const value = Number(raw);
  if (raw == null || raw.trim() === '' || !Number.isInteger(value) || value < min) {
    throw new WorldError(`environment variable ${name} must be an integer >= ${min} (got '${raw ?? ''}')`);
  }
  return value;
}

/** The launcher that set this process's variables, if any. */
function detectLauncher(env: Env): World['launcher'] | null {
  if (env.FASHION_MNIST_LAUNCHER === 'builtin' && env.RANK != null) return 'builtin';
  if (env.RANK != null && env.WORLD_SIZE != null) return 'torchrun';
  if (env.OMPI_COMM_WORLD_RANK != null && env.OMPI_COMM_WORLD_SIZE != null) return 'openmpi';
  if (env.SLURM_PROCID != null && env.SLURM_NTASKS != null) return 'slurm';
  return null;
}

/** SLURM_TASKS_PER_NODE ("2(x3),1": 2 tasks on each of 3 nodes, then 1) for node `node`. */
export function slurmTasksOnNode(value: string, node: number): number | null {
  const counts: number[] = [];
  for (const part of value.split(',')) {
    const m = /^(\d+)(?:\(x(\d+)\))?$/.exec(part.trim());
    if (m == null) return null;
    for (let i = 0; i < Number(m[2] ?? 1); i++) counts.push(Number(m[1]));
  }
  return counts[node] ?? null;
}

function localWorldSizeOf(env: Env, launcher: World['launcher']): number {
  const raw = {
    builtin: env.LOCAL_WORLD_SIZE,
    torchrun: env.LOCAL_WORLD_SIZE,
    openmpi: env.OMPI_COMM_WORLD_LOCAL_SIZE,
    slurm: env.SLURM_NTASKS_PER_NODE ?? (env.SLURM_TASKS_PER_NODE != null ? String(slurmTasksOnNode(env.SLURM_TASKS_PER_NODE, Number(env.SLURM_NODEID ?? 0))) : undefined),
    single: '1',
  }[launcher];
  const n = Number(raw);
  return Number.isInteger(n) && n >= 1 ? n : 1;
}

/**
 * Reads the job's shape from the environment, as torchrun's workers do:
 * RANK, WORLD_SIZE, LOCAL_RANK (torchrun, Kubernetes operators, this
 * project's launcher), OMPI_COMM_WORLD_* (mpirun), SLURM_* (srun); the peers
 * meet at MASTER_ADDR:MASTER_PORT. Returns null outside any launcher.
 */
export function worldFromEnv(env: Env = process.env): World | null {
  const launcher = detectLauncher(env);
  if (launcher == null) return null;
  const [rankVar, sizeVar, localVar] = {
    builtin: ['RANK', 'WORLD_SIZE', 'LOCAL_RANK'],
    torchrun: ['RANK', 'WORLD_SIZE', 'LOCAL_RANK'],
    openmpi: ['OMPI_COMM_WORLD_RANK', 'OMPI_COMM_WORLD_SIZE', 'OMPI_COMM_WORLD_LOCAL_RANK'],
    slurm: ['SLURM_PROCID', 'SLURM_NTASKS', 'SLURM_LOCALID'],
    single: ['', '', ''],
  }[launcher];
  const worldSize = intVar(env, sizeVar, 1);
  const rank = intVar(env, rankVar, 0);
  if (rank >= worldSize) throw new WorldError(`${rankVar}=${rank} must be less than ${sizeVar}=${worldSize}`);
  const localRank = env[localVar] != null ? intVar(env, localVar, 0) : rank;
  const masterAddr = env.MASTER_ADDR?.trim() || DEFAULT_MASTER_ADDR;
  const masterPort = env.MASTER_PORT != null ? intVar(env, 'MASTER_PORT', 1) : DEFAULT_MASTER_PORT;
  if (masterPort > 65535) throw new WorldError(`MASTER_PORT must be a TCP port, 1-65535 (got ${masterPort})`);
  return { rank, worldSize, localRank, localWorldSize: localWorldSizeOf(env, launcher), masterAddr, masterPort, launcher };
}

export const SINGLE_WORLD: World = {
  rank: 0, worldSize: 1, localRank: 0, localWorldSize: 1, masterAddr: DEFAULT_MASTER_ADDR, masterPort: 0, launcher: 'single',
};

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
