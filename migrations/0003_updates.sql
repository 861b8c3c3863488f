ALTER TABLE `snapshots` ADD `root` text DEFAULT '/' NOT NULL;--> statement-breakpoint
ALTER TABLE `snapshots` ADD `path` text;--> statement-breakpoint
ALTER TABLE `snapshots` ADD `boot_files` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `snapshots` ADD `boot_store` text;--> statement-breakpoint
ALTER TABLE `snapshots` ADD `pre_id` integer;--> statement-breakpoint
ALTER TABLE `snapshots` ADD `deleted_at` integer;--> statement-breakpoint
ALTER TABLE `update_history` ADD `pid` integer;--> statement-breakpoint
ALTER TABLE `update_history` ADD `pid_start` integer;--> statement-breakpoint
ALTER TABLE `update_history` ADD `root` text DEFAULT '/' NOT NULL;--> statement-breakpoint
ALTER TABLE `update_history` ADD `command` text DEFAULT '' NOT NULL;--> statement-breakpoint
ALTER TABLE `update_history` ADD `checks` text DEFAULT '[]' NOT NULL;--> statement-breakpoint
ALTER TABLE `update_history` ADD `reason` text;--> statement-breakpoint
ALTER TABLE `update_history` ADD `next_boot` text;--> statement-breakpoint
ALTER TABLE `update_history` ADD `rollback_snapshot_id` integer;--> statement-breakpoint
ALTER TABLE `update_history` ADD `boot_state` text DEFAULT 'none' NOT NULL;--> statement-breakpoint
ALTER TABLE `update_history` ADD `boot_failures` integer DEFAULT 0 NOT NULL;