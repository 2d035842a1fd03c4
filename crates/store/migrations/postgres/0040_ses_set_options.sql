-- PostgreSQL. SES v2: the options of each configuration set (a JSON object: TrackingOptions, DeliveryOptions,
-- ReputationOptions, SendingOptions, SuppressionOptions; '{}' = the defaults), and the sender, subject and
-- admission time of each message sent with a set. Mail refused at admission (REJECT, RENDERING_FAILURE) has such a
-- row and events but no messages row: the row fills the events' mail object, and retention prunes it by created_ms.
ALTER TABLE ses_configuration_sets ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
ALTER TABLE ses_message_tags ADD COLUMN source TEXT NOT NULL DEFAULT '';
ALTER TABLE ses_message_tags ADD COLUMN subject TEXT NOT NULL DEFAULT '';
ALTER TABLE ses_message_tags ADD COLUMN created_ms BIGINT NOT NULL DEFAULT 0;
CREATE INDEX ses_message_tags_by_created ON ses_message_tags (created_ms);
