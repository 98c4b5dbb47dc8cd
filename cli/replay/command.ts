import { CliError, type Target } from '../context.ts';
import { EXIT } from '../format.ts';
import { ReplayError, ReplayFailedError, startReplay } from './index.ts';

export interface ReplayRequest {
  readonly from: Date;
  readonly to: Date;
  /** Event names without version (JobStarted) or detail-types (JobStarted.v1). */
  readonly events?: readonly string[] | undefined;
  readonly wait: boolean;
}

/** Event names as the user types them ("JobStarted") to detail-types ("JobStarted.v1"). */
export function detailTypesOf(events: readonly string[] | undefined): string[] | undefined {
  if (!events || events.length === 0) return undefined;
  return events.map((e) => (/\.v\d+$/.test(e) ? e : `${e}.v1`));
}

/** A replay that ran and ended FAILED/CANCELLED: exit 2, like a failed job. */
class ReplayEndedError extends CliError {
  override readonly name = 'ReplayEndedError';
  override readonly exitCode: number = EXIT.jobFailed;
}

/**
 * `rowstream replay`: cli/replay/index.ts does the work (window, rules, follow); this prints its progress
 * lines and the summary. Bad windows or event names and an emulator that cannot replay are usage or
 * environment errors (exit 1); a replay that ended FAILED or CANCELLED exits 2.
 */
export async function runReplay(target: Target, req: ReplayRequest): Promise<number> {
  try {
    const summary = await startReplay({
      stage: target.stage,
      region: target.region,
      endpoint: target.endpoint,
      archiveName: target.archiveName,
      busName: target.busName,
      from: req.from,
      to: req.to,
      detailTypes: detailTypesOf(req.events),
      wait: req.wait,
      onProgress: (line) => console.log(line),
    });
    console.log(`replay ${summary.name}: ${summary.state}`);
    console.log(`  window  ${summary.from} .. ${summary.to}`);
    console.log(`  rules   ${summary.rules.join(', ') || '(all rules of the bus)'}`);
    if (summary.alsoReplayed.length > 0) console.log(`  also    ${summary.alsoReplayed.join(', ')}`);
    console.log('  consumers are idempotent on the event id: nothing is produced twice');
    return EXIT.ok;
  } catch (error) {
    if (error instanceof ReplayFailedError) throw new ReplayEndedError(error.message);
    if (error instanceof ReplayError) throw new CliError(`${error.name}: ${error.message}`);
    throw error;
  }
}
