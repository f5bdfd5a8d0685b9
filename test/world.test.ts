import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { worldFromEnv } from '../lib/ddp/world';

describe("reading a worker's place from the launcher's environment", () => {
  it('is null outside any launcher', () => {
    assert.equal(worldFromEnv({}), null);
  });

  it('reads torchrun variables', () => {
    assert.deepEqual(worldFromEnv({ RANK: '3', WORLD_SIZE: '8', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '4', MASTER_ADDR: '10.1.2.3', MASTER_PORT: '29400' }), {
      rank: 3, worldSize: 8, localRank: 1, localWorldSize: 4, masterAddr: '10.1.2.3', masterPort: 29400, launcher: 'torchrun',
    });
  });

  it("reads Open MPI's mpirun variables, with torchrun's defaults for the meeting point", () => {
    assert.deepEqual(worldFromEnv({ OMPI_COMM_WORLD_RANK: '1', OMPI_COMM_WORLD_SIZE: '2', OMPI_COMM_WORLD_LOCAL_RANK: '1', OMPI_COMM_WORLD_LOCAL_SIZE: '2' }), {
      rank: 1, worldSize: 2, localRank: 1, localWorldSize: 2, masterAddr: '127.0.0.1', masterPort: 29500, launcher: 'openmpi',
    });
  });

  it("reads SLURM's srun variables", () => {
    assert.deepEqual(worldFromEnv({ SLURM_PROCID: '5', SLURM_NTASKS: '16', SLURM_LOCALID: '1', SLURM_NODEID: '2', SLURM_TASKS_PER_NODE: '4(x2),3,5', MASTER_ADDR: 'node01' }), {
      rank: 5, worldSize: 16, localRank: 1, localWorldSize: 3, masterAddr: 'node01', masterPort: 29500, launcher: 'slurm',
    });
  });

  it('counts one worker on the machine when the launcher does not say how many', () => {
    assert.equal(worldFromEnv({ RANK: '0', WORLD_SIZE: '2' })?.localWorldSize, 1);
    assert.equal(worldFromEnv({ SLURM_PROCID: '0', SLURM_NTASKS: '2', SLURM_TASKS_PER_NODE: 'garbled' })?.localWorldSize, 1);
  });

  it('rejects inconsistent or malformed values, naming the variable', () => {
    assert.throws(() => worldFromEnv({ RANK: '2', WORLD_SIZE: '2' }), /RANK=2 must be less than WORLD_SIZE=2/);
    assert.throws(() => worldFromEnv({ RANK: 'x', WORLD_SIZE: '2' }), /RANK must be an integer/);
    assert.throws(() => worldFromEnv({ RANK: '0', WORLD_SIZE: '2', MASTER_PORT: '70000' }), /MASTER_PORT must be a TCP port/);
  });
});
