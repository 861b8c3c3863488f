CREATE TABLE `migration_entries` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`migration_id` integer NOT NULL,
	`item` text NOT NULL,
	`kind` text NOT NULL,
	`source_path` text NOT NULL,
	`target_path` text NOT NULL,
	`size` integer DEFAULT 0 NOT NULL,
	`state` text DEFAULT 'pending' NOT NULL,
	`digest` text,
	`note` text,
	`moved_to` text,
	FOREIGN KEY (`migration_id`) REFERENCES `migrations`(`id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE INDEX `migration_entries_run_idx` ON `migration_entries` (`migration_id`,`state`);--> statement-breakpoint
CREATE TABLE `migrations` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`status` text NOT NULL,
	`source` text NOT NULL,
	`plan` text NOT NULL,
	`options` text DEFAULT '{}' NOT NULL,
	`created_at` integer DEFAULT (cast(unixepoch('subsec') * 1000 as integer)) NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`report` text
);
