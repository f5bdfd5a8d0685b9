#!/usr/bin/env node
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../data/fashion-mnist';
import { BackendError } from '../backend/select';
import { MODELS } from '../models/index';
import { formatEpochLine } from '../train/metrics';
import { train, type TrainEvent } from '../launch/train';
import { helpText, parseArgs, UsageError } from './args';
import { CommError } from '../ddp/communicator';
import { LaunchError, WorkerError } from '../launch/launch';
import { RendezvousError } from '../ddp/rendezvous';
import { WorldError, worldFromEnv } from '../ddp/world';
import { OutputPathError } from '../train/output-paths';
import { CheckpointError } from '../train/checkpoint-file';
import { ResumeError, resumeConfig } from '../launch/resume';
import { InterruptedError } from '../train/stop-signals';
import { MpiUnavailableError } from '../ddp/mpi';

/** Failures with a message written for the user: no stack trace needed. */
const KNOWN_ERRORS = [DataError, BackendError, RangeError, WorkerError, LaunchError, CommError, RendezvousError, WorldError, OutputPathError, ResumeError, CheckpointError, MpiUnavailableError];

function version(): string {
  const pkg = JSON.parse(fs.readFileSync(path.join(__dirname, '..', '..', '..', 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

/** Prints events like the course script, with a live progress line on a terminal. */
function reporter(showProgress: boolean): (event: TrainEvent) => void {
  let progressShown = false;
  let lastDrawn = 0;
  const clearProgress = () => {
    if (progressShown) process.stderr.write('\r\x1b[K');
    progressShown = false;
  };
  return (event) => {
    switch (event.type) {
      case 'start':
        console.log(`Engine: ${event.engine}`);
        console.log(`Trainable parameters: ${event.parameters.toLocaleString('en-US')}`);
        console.log(`Training images per epoch: ${event.trainImages}, validation images: ${event.valImages}, steps per epoch: ${event.stepsPerEpoch}`);
        console.log(`Run record: ${event.runDir}`);
        break;
      case 'step':
        if (showProgress && (event.step === event.steps || performance.now() - lastDrawn > 100)) {
          lastDrawn = performance.now();
          process.stderr.write(`\r\x1b[Kepoch ${event.epoch}  step ${event.step}/${event.steps}  loss ${event.loss.toFixed(3)}  ${event.imagesPerSec.toFixed(1)} images/s`);
          progressShown = true;
        }
        break;
      case 'epoch':
        clearProgress();
        console.log(formatEpochLine(event.metrics));
        break;
      case 'log':
        clearProgress();
        console.log(event.message);
        break;
    }
  };
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs(argv);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`fashion-mnist: error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  if (parsed.help) {
    console.log(helpText());
    return 0;
  }
  if (parsed.version) {
    console.log(version());
    return 0;
  }
  let config;
  try {
    config = resumeConfig(parsed.config, parsed.given);
  } catch (e) {
    if (e instanceof ResumeError) {
      console.error(`fashion-mnist: error: ${e.message}`);
      return 2;
    }
    throw e;
  }
  // Under mpirun, srun or torchrun every rank runs this command; rank 0 speaks, and errors name their rank.
  const world = worldFromEnv();
  const leader = (world?.rank ?? 0) === 0;
  const who = world != null && world.launcher !== 'builtin' && world.worldSize > 1 ? ` (rank ${world.rank})` : '';
  if (leader) console.log(`Model: ${config.model}: ${MODELS[config.model].summary}`);
  const showProgress = leader && config.progress && process.stderr.isTTY === true;
  try {
    const result = await train(config, { onEvent: reporter(showProgress) });
    return result.outcome === 'diverged' ? 3 : 0;
  } catch (e) {
    if ((e instanceof WorkerError && e.rank === -1) || e instanceof InterruptedError) {
      console.error(`fashion-mnist: ${e.message}`);
      return 130;
    }
    if (e instanceof Error && KNOWN_ERRORS.some((kind) => e instanceof kind)) {
      console.error(`fashion-mnist${who}: error: ${e.message}`);
      return 1;
    }
    if (who !== '' && e instanceof Error) e.message = `rank ${world?.rank}: ${e.message}`;
    throw e;
  }
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack ?? e.message : e);
    process.exitCode = 1;
  },
);
