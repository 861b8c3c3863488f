/**
 * The setup flow: a state machine over the domain services, from detection to a VM on the
 * passed-through GPU registered as a Moonlight app. Each step's state lives in SQLite, so the
 * flow resumes after a crash or a reboot; every step is idempotent (running it again after it
 * succeeded changes nothing) and says in plain words what to do when it fails or waits.
 *
 * No transport: the API routes, the `setup` CLI and the boot-time verify unit call this.
 */
import type { SetupRepo, SetupStepRow } from "../db/repos/setup.ts";
import { AppError, invalid } from "../errors.ts";
import type { EventBus } from "../events/bus.ts";
import type { Logger } from "../log.ts";
import {
  OPTION_USED_BY,
  SETUP_STEPS,
  STEP_TITLES,
  SetupAdvanceRequest,
  SetupOptions,
  SetupOptionsPatch,
  SetupResetRequest,
  SetupRetryRequest,
  StepId,
  type FlowState,
  type OptionName,
  type SetupStatus,
  type SetupStep,
  type SetupStepEvent,
  type StepState,
  type WaitingFor,
} from "./model.ts";
import { adviceFor } from "./advice.ts";
import { STEP_RUNNERS, StepFailure, type StepContext, type StepDeps, type StepOutcome } from "./steps.ts";

export interface SetupServiceDeps extends StepDeps {
  repo: SetupRepo;
  events: EventBus;
  log: Logger;
  /** Called before each step runs (tests inject failures here): a throw fails the step. */
  beforeStep?: (id: StepId) => void | Promise<void>;
}

type AdvanceInput = { confirm: boolean; until?: StepId };

const iso = (d: Date | null | undefined) => (d ? d.toISOString() : null);
const index = (id: StepId) => SETUP_STEPS.indexOf(id);

function parse<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: { issues: { path: PropertyKey[]; message: string }[] } } }, v: unknown): T {
  const r = schema.safeParse(v ?? {});
  if (!r.success) throw invalid(r.error.issues.map((i) => `${i.path.join(".") || "(body)"}: ${i.message}`).join("; "));
  return r.data;
}

export class SetupService {
  private running: Promise<SetupStatus> | null = null;

  constructor(private readonly deps: SetupServiceDeps) {}

  // ---- reading -------------------------------------------------------------

  options(): SetupOptions {
    const r = SetupOptions.safeParse(this.deps.repo.options());
    // a stored value this version no longer accepts is dropped, never fatal
    return r.success ? r.data : {};
  }

  private rows(): Map<StepId, SetupStepRow> {
    const out = new Map<StepId, SetupStepRow>();
    for (const r of this.deps.repo.steps()) if ((SETUP_STEPS as readonly string[]).includes(r.id)) out.set(r.id as StepId, r);
    return out;
  }

  private view(id: StepId, row: SetupStepRow | undefined): SetupStep {
    // a step left "running" by a process that died is run again: every step is idempotent
    const interrupted = row?.state === "running" && !this.running;
    return {
      id,
      title: STEP_TITLES[id],
      state: interrupted ? "pending" : ((row?.state ?? "pending") as StepState),
      detail: interrupted ? "interrupted before it finished; it runs again on the next advance" : (row?.detail ?? ""),
      advice: interrupted ? null : (row?.advice ?? null),
      waitingFor: interrupted ? null : ((row?.waitingFor ?? null) as WaitingFor | null),
      error: row?.errorCode && !interrupted ? { code: row.errorCode, message: row.errorMessage ?? "" } : null,
      result: (row?.result as Record<string, unknown> | null | undefined) ?? null,
      attempts: row?.attempts ?? 0,
      startedAt: iso(row?.startedAt),
      finishedAt: iso(row?.finishedAt),
      updatedAt: iso(row?.updatedAt),
    };
  }

  private flow(steps: SetupStep[]): { state: FlowState; current: StepId | null } {
    const cur = steps.find((s) => s.state !== "done" && s.state !== "skipped");
    if (!cur) return { state: "done", current: null };
    if (steps.every((s) => s.state === "pending")) return { state: "not-started", current: cur.id };
    const state: FlowState = cur.state === "failed" ? "failed" : cur.state === "waiting" ? "waiting" : "in-progress";
    return { state, current: cur.id };
  }

  status(): SetupStatus {
    const rows = this.rows();
    const steps = SETUP_STEPS.map((id) => this.view(id, rows.get(id)));
    const { password, ...rest } = this.options();
    return { ...this.flow(steps), running: this.running !== null, options: { ...rest, passwordSet: password !== undefined && password !== "" }, steps };
  }

  // ---- choices -------------------------------------------------------------

  setOptions(patch: SetupOptionsPatch): SetupStatus {
    const p = parse(SetupOptionsPatch, patch);
    const current = this.options() as Record<string, unknown>;
    const rows = this.rows();
    const next: Record<string, unknown> = { ...current };
    for (const [k, v] of Object.entries(p) as [OptionName, unknown][]) {
      if (v === undefined) continue;
      if (JSON.stringify(current[k]) === JSON.stringify(v ?? undefined)) continue;
      const step = OPTION_USED_BY[k];
      const row = rows.get(step);
      if (row?.state === "done" || row?.state === "skipped")
        throw new AppError("SETUP_OPTION_LOCKED", `${k} was used by the step "${STEP_TITLES[step]}", which is done: reset the flow from ${step} to change it`, {
          status: 409,
          details: { option: k, step },
        });
      if (v === null) delete next[k];
      else next[k] = v;
    }
    this.deps.repo.putOptions(next);
    return this.status();
  }

  // ---- running -------------------------------------------------------------

  /** Runs steps from the first unfinished one until one waits, fails, or all are done. */
  advance(input: SetupAdvanceRequest = {}): Promise<SetupStatus> {
    const req = parse(SetupAdvanceRequest, input);
    return this.exclusive({ confirm: req.confirm, until: req.until });
  }

  /**
   * At boot (the setup-verify unit): when the flow waits for the reboot or the verify step, it
   * records the reboot and the verify verdict; otherwise it changes nothing.
   */
  async bootVerify(): Promise<SetupStatus> {
    const st = this.status();
    if (st.current !== "reboot" && st.current !== "verify") return st;
    return this.exclusive({ confirm: false, until: "verify" });
  }

  /**
   * Whether the flow can go on by itself: it is under way (a restart interrupted it, or the boot
   * unit recorded the reboot), or it waits for the guest. Never when it waits for a confirmation,
   * a choice or a reboot, failed, or was never started.
   */
  canResume(): boolean {
    if (this.running) return false;
    const st = this.status();
    if (st.state === "in-progress") return true;
    return st.state === "waiting" && st.steps.find((s) => s.id === st.current)?.waitingFor === "guest";
  }

  /**
   * The service's own pass: at start and every `intervalMs`, advance when the flow can go on by
   * itself (guest steps finish as the guest comes up). Returns the stop function.
   */
  startResuming(intervalMs: number): () => void {
    const tick = () => {
      let go = false;
      try {
        go = this.canResume();
      } catch (err) {
        this.deps.log.warn("setup resume check failed", { error: (err as Error).message });
      }
      if (go) void this.exclusive({ confirm: false }).catch((err: unknown) => this.deps.log.warn("setup resume failed", { error: (err as Error).message }));
    };
    tick();
    const timer = setInterval(tick, intervalMs);
    timer.unref?.();
    return () => clearInterval(timer);
  }

  /** Starts an advance without waiting for it (progress as setup.step events); the status at once. */
  advanceInBackground(input: SetupAdvanceRequest = {}): SetupStatus {
    const req = parse(SetupAdvanceRequest, input);
    void this.exclusive({ confirm: req.confirm, until: req.until }).catch((err: unknown) => this.deps.log.error("setup advance failed", { error: err }));
    return this.status();
  }

  /** A failed, waiting or done step goes back to pending and the flow runs from it. */
  retry(id: StepId, input: { confirm?: boolean; wait?: boolean } = {}): Promise<SetupStatus> | SetupStatus {
    const step = parse(StepId, id);
    const req = parse(SetupRetryRequest, input);
    if (this.running) throw busy();
    const st = this.status();
    const earlier = st.steps.slice(0, index(step)).find((s) => s.state !== "done" && s.state !== "skipped");
    if (earlier)
      throw new AppError("SETUP_STEP_NOT_RETRYABLE", `"${STEP_TITLES[step]}" comes after "${earlier.title}", which is ${earlier.state}: continue the flow from there`, { status: 409 });
    this.deps.repo.deleteSteps([step]);
    this.publish(step);
    return req.wait ? this.exclusive({ confirm: req.confirm }) : this.advanceInBackground({ confirm: req.confirm, wait: false });
  }

  /** Steps from `from` on are pending again (host changes stay: VFIO rollback undoes those). */
  reset(input: { from?: StepId } = {}): SetupStatus {
    const { from } = parse(SetupResetRequest, input);
    if (this.running) throw busy();
    const ids = SETUP_STEPS.slice(index(from));
    this.deps.repo.deleteSteps([...ids]);
    this.deps.events.publish("setup.reset", { from });
    return this.status();
  }

  private exclusive(input: AdvanceInput): Promise<SetupStatus> {
    if (this.running) return Promise.reject(busy());
    const p = this.run(input).finally(() => {
      this.running = null;
    });
    this.running = p;
    return p;
  }

  private async run(input: AdvanceInput): Promise<SetupStatus> {
    for (const id of SETUP_STEPS) {
      const row = this.rows().get(id);
      if (row && (row.state === "done" || row.state === "skipped")) {
        if (id === input.until) break;
        continue;
      }
      const outcome = await this.runStep(id, row, input);
      if (outcome !== "done" || id === input.until) break;
    }
    return this.status();
  }

  private context(input: AdvanceInput): StepContext {
    const rows = this.rows();
    return {
      options: this.options(),
      confirm: input.confirm,
      result: (id) => (rows.get(id)?.result as Record<string, unknown> | null | undefined) ?? null,
    };
  }

  private async runStep(id: StepId, row: SetupStepRow | undefined, input: AdvanceInput): Promise<"done" | "stopped"> {
    const startedAt = new Date();
    const attempts = (row?.attempts ?? 0) + 1;
    this.deps.repo.putStep({ id, state: "running", detail: `${STEP_TITLES[id]}…`, attempts, startedAt, updatedAt: startedAt, result: row?.result ?? null });
    this.publish(id);
    let outcome: StepOutcome;
    try {
      await this.deps.beforeStep?.(id);
      outcome = await STEP_RUNNERS[id](this.deps, this.context(input));
    } catch (err) {
      const e = err instanceof AppError ? err : new AppError("INTERNAL", (err as Error)?.message ?? String(err), { cause: err });
      const advice = err instanceof StepFailure ? err.advice : adviceFor(id, e);
      if (!(err instanceof AppError)) this.deps.log.error("setup step failed unexpectedly", { step: id, error: err });
      const now = new Date();
      this.deps.repo.putStep({
        id,
        state: "failed",
        detail: `${STEP_TITLES[id]} failed: ${e.message}`,
        advice,
        errorCode: e.errorCode,
        errorMessage: e.message,
        attempts,
        startedAt,
        finishedAt: now,
        updatedAt: now,
        result: row?.result ?? null,
      });
      this.publish(id);
      return "stopped";
    }
    const now = new Date();
    this.deps.repo.putStep({
      id,
      state: outcome.state,
      detail: outcome.detail,
      advice: outcome.state === "waiting" ? outcome.advice : null,
      waitingFor: outcome.state === "waiting" ? outcome.waitingFor : null,
      attempts,
      startedAt,
      finishedAt: outcome.state === "waiting" ? null : now,
      updatedAt: now,
      result: outcome.result ?? null,
    });
    this.publish(id);
    return outcome.state === "waiting" ? "stopped" : "done";
  }

  private publish(id: StepId): void {
    const st = this.status();
    const step = st.steps[index(id)]!;
    const event: SetupStepEvent = { step, flow: { state: st.state, current: st.current } };
    this.deps.events.publish("setup.step", event);
    this.deps.log.info("setup step", { step: id, state: step.state, detail: step.detail });
  }
}

const busy = () => new AppError("SETUP_BUSY", "the setup flow is already running; wait for it to stop (setup.step events) and try again", { status: 409 });
