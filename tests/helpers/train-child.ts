/**
 * Runs one training (trainModel) in its own process, for kill drills: argv[2] is the TrainRequest as
 * JSON (without onPoint). Prints one line per optimizer step: `point <json>`.
 */
import { quietContext } from '../../main/engine/job-context.ts';
import { trainModel } from '../../main/engine/train/train-model.ts';
import type { TrainRequest } from '../../main/engine/train/types.ts';

const req = JSON.parse(process.argv[2]) as TrainRequest;
await trainModel({ ...req, onPoint: (p) => process.stdout.write(`point ${JSON.stringify(p)}\n`) }, quietContext(req.checkpointDir));
process.stdout.write('done\n');
