CREATE TABLE `setup_options` (
	`id` integer PRIMARY KEY NOT NULL,
	`options` text NOT NULL,
	`updated_at` integer
);
--> statement-breakpoint
CREATE TABLE `setup_steps` (
	`id` text PRIMARY KEY NOT NULL,
	`state` text NOT NULL,
	`detail` text DEFAULT '' NOT NULL,
	`advice` text,
	`waiting_for` text,
	`error_code` text,
	`error_message` text,
	`result` text,
	`attempts` integer DEFAULT 0 NOT NULL,
	`started_at` integer,
	`finished_at` integer,
	`updated_at` integer
);
