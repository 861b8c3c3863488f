ALTER TABLE `migration_entries` ADD `mode` integer;--> statement-breakpoint
ALTER TABLE `migration_entries` ADD `meta` text;--> statement-breakpoint
ALTER TABLE `migrations` ADD `scan` text;