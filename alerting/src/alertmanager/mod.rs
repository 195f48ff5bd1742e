//! The Alertmanager's pure core: configuration, matchers, routing, inhibition, time intervals.

mod config;
mod duration;
mod gostr;
mod inhibit;
mod matcher;
mod receivers;
mod route;
mod timeinterval;

pub use config::{Config, GlobalConfig, LoadOptions, Scalar};
pub use duration::PromDuration;
pub use inhibit::{inhibited_by, InhibitRule};
pub use matcher::{
    classic_matcher, classic_matchers, parse_matcher, parse_matchers, utf8_matcher, utf8_matchers, MatchType, Matcher,
    Matchers, ParseMode,
};
pub use receivers::{
    DiscordConfig, EmailConfig, HttpClientConfig, IncidentioConfig, JiraConfig, MattermostConfig, MsTeamsConfig,
    MsTeamsV2Config, OpsGenieConfig, OpsGenieResponder, PagerdutyConfig, PagerdutyImage, PagerdutyLink, PushoverConfig,
    Receiver, RocketchatConfig, SlackAction, SlackConfig, SlackConfirmationField, SlackField, SnsConfig,
    TelegramConfig, VictorOpsConfig, WebexConfig, WebhookConfig, WechatConfig,
};
pub use route::{label_set_string, Route, RouteOpts};
pub use timeinterval::{NamedTimeInterval, TimeInterval};
