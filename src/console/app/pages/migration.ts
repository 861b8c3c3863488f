/** Migration: the plan with per-item fidelity, progress, the report, undo — over the migration API. */
import { getOptional } from "../api.ts";
import { h, section } from "../dom.ts";
import { absent, livePage, type Page } from "./live.ts";

export const migrationPage: Page = {
  title: "Migration",
  render(root) {
    return livePage(
      root,
      "migration",
      async () => {
        const state = await getOptional<Record<string, unknown>>("/migration");
        if (!state) return absent("Migration", "/api/v1/migration", "plan a migration with the CLI: `neuron-appliance migrate plan`.");
        return section("Migration", h("pre", { class: "log" }, JSON.stringify(state, null, 2)));
      },
      ["migration."],
    ).dispose;
  },
};
