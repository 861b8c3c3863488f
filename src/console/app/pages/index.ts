import { appsPage } from "./apps.ts";
import { auditPage } from "./audit.ts";
import { dashboardPage } from "./dashboard.ts";
import type { Page } from "./live.ts";
import { migrationPage } from "./migration.ts";
import { setupPage } from "./setup.ts";
import { streamingPage } from "./streaming.ts";
import { updatesPage } from "./updates.ts";
import { vmsPage } from "./vms.ts";

/** The navigation, in order, named as the appliance names its parts. */
export const PAGES = {
  dashboard: dashboardPage,
  setup: setupPage,
  vms: vmsPage,
  streaming: streamingPage,
  apps: appsPage,
  updates: updatesPage,
  migration: migrationPage,
  audit: auditPage,
} satisfies Record<string, Page>;
export type PageId = keyof typeof PAGES;
