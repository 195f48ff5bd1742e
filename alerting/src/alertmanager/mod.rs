//! The Alertmanager's pure core: configuration, matchers, routing, inhibition, time intervals.

mod alert;
mod config;
mod dispatch;
mod duration;
mod email;
mod gostr;
mod inhibit;
mod integrations;
mod matcher;
mod nflog;
mod notify;
mod receivers;
mod route;
mod silence;
mod snapshot;
mod timeinterval;
mod webhook;

pub use alert::{fingerprint, format_rfc3339, parse_rfc3339, Alert, PostableAlert, ZERO_TIME};
pub use config::{Config, GlobalConfig, LoadOptions, Scalar};
pub use dispatch::{
    integrations, sort_alerts, AlertStatus, Dispatcher, GroupView, Integration, Notification, NotifiedAlert,
};
pub use duration::PromDuration;
pub use email::{email_html, send_email};
pub use inhibit::{inhibited_by, InhibitRule};
pub use integrations::{msteams_body, pagerduty_body, slack_body, template_data};
pub use matcher::{
    classic_matcher, classic_matchers, parse_matcher, parse_matchers, utf8_matcher, utf8_matchers, MatchType, Matcher,
    Matchers, ParseMode,
};
pub use nflog::{LogEntry, LogKey, NotificationLog};
pub use notify::{send_with_retries, HttpNotifier, Notifier, NotifyMetrics, USER_AGENT};
pub use receivers::{
    DiscordConfig, EmailConfig, HttpClientConfig, IncidentioConfig, JiraConfig, MattermostConfig, MsTeamsConfig,
    MsTeamsV2Config, OpsGenieConfig, OpsGenieResponder, PagerdutyConfig, PagerdutyImage, PagerdutyLink, PushoverConfig,
    Receiver, RocketchatConfig, SlackAction, SlackConfig, SlackConfirmationField, SlackField, SnsConfig,
    TelegramConfig, VictorOpsConfig, WebexConfig, WebhookConfig, WechatConfig,
};
pub use route::{label_set_string, Route, RouteOpts};
pub use silence::{Silence, SilenceState, Silences};
pub use timeinterval::{NamedTimeInterval, TimeInterval};
pub use webhook::{quote_meta, webhook_body};
