//! The console's templates and assets, embedded in the binary, and the context every page gets (language texts,
//! user, account, CSRF token, the one-shot message).

use crate::auth::{Page, clear_flash};
use crate::i18n::Lang;
use crate::{ConsoleError, MOUNT};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use minijinja::Environment;
use serde_json::{Value, json};

const CSS: &str = include_str!("../assets/console.css");
const JS: &str = include_str!("../assets/console.js");

/// Every template, by name.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("refused.html", include_str!("../templates/refused.html")),
    ("domains.html", include_str!("../templates/domains.html")),
    ("domain.html", include_str!("../templates/domain.html")),
    ("templates.html", include_str!("../templates/templates.html")),
    ("template_edit.html", include_str!("../templates/template_edit.html")),
    ("review.html", include_str!("../templates/review.html")),
    ("check.html", include_str!("../templates/check.html")),
    ("send.html", include_str!("../templates/send.html")),
    ("messages.html", include_str!("../templates/messages.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("lists.html", include_str!("../templates/lists.html")),
    ("tasks.html", include_str!("../templates/tasks.html")),
    ("stats.html", include_str!("../templates/stats.html")),
    ("suppression.html", include_str!("../templates/suppression.html")),
    ("settings.html", include_str!("../templates/settings.html")),
    ("keys.html", include_str!("../templates/keys.html")),
    ("mailbox.html", include_str!("../templates/mailbox.html")),
    (
        "mailbox_message.html",
        include_str!("../templates/mailbox_message.html"),
    ),
];

/// The compiled templates.
pub(crate) struct Views {
    env: Environment<'static>,
}

impl Views {
    pub(crate) fn new() -> Views {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            // The templates are part of the binary: one that does not parse is a bug the unit tests catch.
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "console template does not parse");
            }
        }
        env.add_filter("datetime", |ms: i64| mailpush_core::format_time(ms));
        Views { env }
    }

    fn render_value(&self, name: &str, ctx: &Value) -> Result<String, minijinja::Error> {
        self.env
            .get_template(name)?
            .render(minijinja::Value::from_serialize(ctx))
    }

    /// The sign-in page.
    pub(crate) fn login(&self, lang: Lang, csrf: &str, error: Option<&str>) -> Response {
        let ctx = json!({ "base": MOUNT, "lang": lang.code(), "tr": lang.texts(), "csrf": csrf, "error": error });
        match self.render_value("login.html", &ctx) {
            Ok(html) => Html(html).into_response(),
            Err(e) => ConsoleError::Render(e).into_response(),
        }
    }

    /// The page of a form refused for its CSRF token.
    pub(crate) fn refused(&self, lang: Lang) -> Html<String> {
        let ctx = json!({ "base": MOUNT, "lang": lang.code(), "tr": lang.texts() });
        Html(
            self.render_value("refused.html", &ctx)
                .unwrap_or_else(|_| lang.t("csrf_refused").to_string()),
        )
    }
}

impl Page {
    /// Renders page `name` with the context every page has; `active` names the navigation entry.
    pub(crate) async fn render(&self, name: &str, active: &str, ctx: Value) -> Result<Response, ConsoleError> {
        let accounts: Vec<Value> = if self.operator() {
            self.app
                .core
                .list_accounts()
                .await?
                .iter()
                .map(|a| json!({ "id": a.id, "name": a.name }))
                .collect()
        } else {
            Vec::new()
        };
        let mut full = json!({
            "base": MOUNT,
            "lang": self.lang.code(),
            "tr": self.lang.texts(),
            "active": active,
            "dev_mode": self.app.core.settings().dev_mode,
            "csrf": self.session.csrf,
            "user": { "username": self.session.user.username, "operator": self.operator() },
            "account": self.session.account.as_ref().map(|a| json!({ "id": a.id, "name": a.name, "app_id": a.app_id })),
            "accounts": accounts,
            "flash": self.flash.as_ref().map(|(ok, text)| json!({ "ok": ok, "text": text })),
        });
        if let (Some(full), Value::Object(extra)) = (full.as_object_mut(), ctx) {
            full.extend(extra);
        }
        let html = self.app.views.render_value(name, &full)?;
        let mut r = Html(html).into_response();
        if self.flash.is_some() {
            clear_flash(&mut r);
        }
        Ok(r)
    }
}

/// `console.css`.
pub(crate) async fn css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        CSS,
    )
        .into_response()
}

/// `console.js`.
pub(crate) async fn js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        JS,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        let mut env = minijinja::Environment::new();
        for (name, source) in super::TEMPLATES {
            env.add_template(name, source).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn a_page_title_is_its_heading() {
        let views = super::Views::new();
        let ctx = serde_json::json!({
            "tr": { "nav_domains": "Domains" }, "user": { "username": "ann" }, "domains": [], "senders": [],
        });
        let html = views.render_value("domains.html", &ctx).expect("render");
        assert!(html.contains("<title>Domains · mailpush</title>"), "{html}");
        assert!(html.contains("<h1>Domains</h1>"), "{html}");
    }
}
