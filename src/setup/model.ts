/** The setup flow's shapes: steps, their states, the user's choices, the status the API and CLI return. */
import { z } from "zod";
import { SETUP_STEP_STATES } from "../db/schema.ts";
import { PciAddress, VmName, VmTemplate } from "../vm/model.ts";

/** The steps, in order. Ids are stable (API, events, CLI, database). */
export const SETUP_STEPS = [
  "detect",
  "gpu",
  "vfio-plan",
  "vfio-apply",
  "reboot",
  "verify",
  "vm",
  "install-media",
  "first-boot",
  "agent",
  "looking-glass",
  "app",
  "done",
] as const;
export const StepId = z.enum(SETUP_STEPS);
export type StepId = z.infer<typeof StepId>;

export const STEP_TITLES: Record<StepId, string> = {
  detect: "Detect hardware",
  gpu: "Choose the GPU",
  "vfio-plan": "Plan the VFIO changes",
  "vfio-apply": "Apply the VFIO changes",
  reboot: "Reboot",
  verify: "Verify after boot",
  vm: "Create the VM",
  "install-media": "Install media",
  "first-boot": "First boot",
  agent: "Guest agent",
  "looking-glass": "Looking Glass",
  app: "Moonlight app",
  done: "Done",
};

export const StepState = z.enum(SETUP_STEP_STATES);
export type StepState = z.infer<typeof StepState>;

export const WAITING_FOR = ["confirm", "reboot", "input", "guest"] as const;
export const WaitingFor = z.enum(WAITING_FOR);
export type WaitingFor = z.infer<typeof WaitingFor>;

export const SetupStep = z
  .object({
    id: StepId,
    title: z.string(),
    state: StepState,
    /** One plain sentence: what happened, or what is being waited for. */
    detail: z.string(),
    /** What to do next, in plain words (failed or waiting steps). */
    advice: z.string().nullable(),
    waitingFor: WaitingFor.nullable(),
    error: z.object({ code: z.string(), message: z.string() }).nullable(),
    result: z.record(z.string(), z.unknown()).nullable(),
    attempts: z.number().int(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    updatedAt: z.string().nullable(),
  })
  .meta({ id: "SetupStep" });
export type SetupStep = z.infer<typeof SetupStep>;

const absPath = z
  .string()
  .min(2)
  .max(4096)
  .refine((p) => p.startsWith("/"), "must be an absolute path")
  .refine((p) => !p.split("/").includes(".."), "must not contain '..'")
  .refine((p) => !/[\0\n\r]/.test(p), "must not contain control characters");

/** A Windows local account name: no characters Windows refuses in user names, no XML metacharacters. */
const accountName = z
  .string()
  .min(1)
  .max(20)
  .regex(/^[A-Za-z0-9][A-Za-z0-9._ -]*$/, "letters, digits, '.', '_', '-' and spaces, starting with a letter or digit")
  .refine((n) => !/^(administrator|guest|defaultaccount|system)$/i.test(n.trim()), "a name Windows reserves");

/** The user's choices; every field optional (defaults are resolved when a step runs). */
export const SetupOptionsFields = {
  gpu: PciAddress,
  acsOverride: z.boolean(),
  regenerate: z.boolean(),
  vmName: VmName,
  template: VmTemplate,
  windowsIso: absPath,
  virtioIso: absPath,
  lookingGlassInstaller: absPath,
  /** A directory with the IVSHMEM driver (ivshmem.inf, .sys, .cat) when the virtio ISO has none. */
  ivshmemDriver: absPath,
  diskGiB: z.number().int().min(32).max(65536),
  memoryMiB: z.number().int().min(1024).max(1024 * 1024),
  vcpus: z.number().int().min(1).max(256),
  pinning: z.boolean(),
  hugepages: z.boolean(),
  user: accountName,
  password: z.string().max(127).refine((p) => !/[\0-\x1f]/.test(p), "must not contain control characters"),
};
export const SetupOptions = z.strictObject(Object.fromEntries(Object.entries(SetupOptionsFields).map(([k, v]) => [k, v.optional()])) as {
  [K in keyof typeof SetupOptionsFields]: z.ZodOptional<(typeof SetupOptionsFields)[K]>;
});
export type SetupOptions = z.infer<typeof SetupOptions>;
export type OptionName = keyof typeof SetupOptionsFields;

/** A change of options: a value sets, null clears. */
export const SetupOptionsPatch = z
  .strictObject(
    Object.fromEntries(Object.entries(SetupOptionsFields).map(([k, v]) => [k, v.nullable().optional()])) as {
      [K in keyof typeof SetupOptionsFields]: z.ZodOptional<z.ZodNullable<(typeof SetupOptionsFields)[K]>>;
    },
  )
  .meta({ id: "SetupOptionsPatch" });
export type SetupOptionsPatch = z.input<typeof SetupOptionsPatch>;

/** Options as shown: the password never leaves the service. */
export const SetupOptionsView = SetupOptions.omit({ password: true })
  .extend({ passwordSet: z.boolean() })
  .meta({ id: "SetupOptions" });

/** Which step first uses each option: once that step is done, the option is locked until a reset. */
export const OPTION_USED_BY: Record<OptionName, StepId> = {
  gpu: "gpu",
  acsOverride: "vfio-plan",
  regenerate: "vfio-apply",
  vmName: "vm",
  template: "vm",
  diskGiB: "vm",
  memoryMiB: "vm",
  vcpus: "vm",
  pinning: "vm",
  hugepages: "vm",
  windowsIso: "install-media",
  virtioIso: "install-media",
  lookingGlassInstaller: "install-media",
  ivshmemDriver: "install-media",
  user: "install-media",
  password: "install-media",
};

export const FLOW_STATES = ["not-started", "in-progress", "waiting", "failed", "done"] as const;
export const FlowState = z.enum(FLOW_STATES);
export type FlowState = z.infer<typeof FlowState>;

export const SetupStatus = z
  .object({
    state: FlowState,
    current: StepId.nullable(),
    running: z.boolean(),
    options: SetupOptionsView,
    steps: z.array(SetupStep),
  })
  .meta({ id: "SetupStatus" });
export type SetupStatus = z.infer<typeof SetupStatus>;

export const SetupAdvanceRequest = z
  .strictObject({
    /** Apply the VFIO changes shown in the plan (the CLI's --yes). */
    confirm: z.boolean().default(false),
    /** Stop after this step. */
    until: StepId.optional(),
    /** false: answer at once (202) and run in the background; progress comes as setup.step events. */
    wait: z.boolean().default(true),
  })
  .meta({ id: "SetupAdvanceRequest" });
export type SetupAdvanceRequest = z.input<typeof SetupAdvanceRequest>;

export const SetupRetryRequest = SetupAdvanceRequest.omit({ until: true }).meta({ id: "SetupRetryRequest" });

export const SetupResetRequest = z.strictObject({ from: StepId.default("detect") }).meta({ id: "SetupResetRequest" });

export const SetupStepParams = z.strictObject({ id: StepId });

export interface SetupStepEvent {
  step: SetupStep;
  flow: { state: FlowState; current: StepId | null };
}
