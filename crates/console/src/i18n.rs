//! The console's UI text in English and Chinese, chosen by the browser's `Accept-Language` (or `?lang=`).
//! Messages from the core (refusals) stay as the API words them.

use std::collections::BTreeMap;

/// A UI language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

impl Lang {
    /// The language an `Accept-Language` header prefers: the first of its entries (by quality) that is Chinese
    /// or English; English when none is.
    pub fn from_accept_language(header: Option<&str>) -> Lang {
        let Some(header) = header else { return Lang::En };
        let mut best: Option<(f32, Lang)> = None;
        for part in header.split(',') {
            let mut fields = part.split(';');
            let tag = fields.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = fields
                .find_map(|f| f.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok()))
                .unwrap_or(1.0);
            let lang = if tag.starts_with("zh") {
                Lang::Zh
            } else if tag.starts_with("en") {
                Lang::En
            } else {
                continue;
            };
            if best.is_none_or(|(bq, _)| q > bq) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    /// The `lang` attribute of the page.
    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Zh => "zh-CN",
        }
    }

    /// Every UI text of this language by key.
    pub fn texts(self) -> BTreeMap<&'static str, &'static str> {
        TEXTS
            .iter()
            .map(|(k, en, zh)| (*k, if self == Lang::Zh { *zh } else { *en }))
            .collect()
    }

    /// One UI text.
    pub fn t(self, key: &str) -> &'static str {
        TEXTS
            .iter()
            .find(|(k, _, _)| *k == key)
            .map_or("", |(_, en, zh)| if self == Lang::Zh { zh } else { en })
    }
}

/// (key, English, Chinese).
const TEXTS: &[(&str, &str, &str)] = &[
    ("nav_mailbox", "Mailbox", "收件箱"),
    (
        "mailbox_intro",
        "Dev mode: every mail mailpush delivers lands here, nothing leaves this machine.",
        "开发模式：mailpush 投递的每封邮件都在这里，不会发出本机。",
    ),
    ("received", "Received", "接收时间"),
    ("dkim", "DKIM", "DKIM"),
    ("dkim_none", "no signature", "无签名"),
    ("view_html", "HTML", "HTML"),
    ("view_text", "Text", "纯文本"),
    ("view_raw", "Raw", "原始邮件"),
    ("view_headers", "Headers", "邮件头"),
    ("product", "mailpush console", "mailpush 控制台"),
    ("sign_in", "Sign in", "登录"),
    ("sign_out", "Sign out", "退出"),
    ("username", "Username", "用户名"),
    ("password", "Password", "密码"),
    ("bad_sign_in", "Wrong username or password.", "用户名或密码错误。"),
    (
        "too_many_sign_ins",
        "Too many failed sign-ins. Try again later.",
        "登录失败次数过多，请稍后再试。",
    ),
    ("operator", "Operator", "运营管理员"),
    ("account", "Account", "账号"),
    ("choose_account", "Choose an account", "选择账号"),
    (
        "choose_account_hint",
        "As operator you see every account: choose the one to look at.",
        "管理员可以查看所有账号：请选择要查看的账号。",
    ),
    ("switch", "Switch", "切换"),
    ("nav_domains", "Sending domains", "发信域名"),
    ("nav_templates", "Templates", "邮件模板"),
    ("nav_review", "Review queue", "模板审核"),
    ("nav_send", "Send test mail", "发送测试邮件"),
    ("nav_check", "Quality check", "邮件质量评分"),
    (
        "check_intro",
        "Score a mail before you send it: 0 to 10, 10 is best; send when it is above 8. Choose a template with \
         TemplateData, or paste a whole message. Nothing is sent.",
        "发送前为邮件评分：0 到 10 分，10 分最好，高于 8 分再发送。选择模板并填写模板变量，或粘贴完整的邮件原文。\
         不会发送任何邮件。",
    ),
    ("score", "Score", "评分"),
    ("spam_filter", "Spam filter", "反垃圾邮件过滤器"),
    ("fix_first", "Fix first", "优先修复"),
    ("mailpush_checks", "mailpush's checks", "mailpush 检查项"),
    ("filter_findings", "What the filter found", "过滤器发现的问题"),
    ("check_name", "Check", "检查项"),
    ("finding", "Finding", "结果"),
    ("weight", "Weight", "权重"),
    ("raw_message", "Or a whole message (MIME)", "或完整邮件原文（MIME）"),
    (
        "marketing_mail",
        "Marketing mail (List-Unsubscribe expected)",
        "营销邮件（需要退订链接）",
    ),
    ("check", "Check", "评分"),
    ("nav_messages", "Messages", "发送记录"),
    ("nav_lists", "Recipient lists", "收件人列表"),
    ("nav_tasks", "Batch sending", "批量发送"),
    ("nav_stats", "Statistics", "发信数据"),
    ("nav_suppression", "Suppression", "黑名单"),
    ("nav_settings", "Settings", "设置"),
    ("domain", "Domain", "域名"),
    ("add_domain", "New domain", "新建域名"),
    ("dkim_option", "DKIM key", "DKIM 密钥"),
    ("status", "Status", "状态"),
    ("verified", "Verified", "已验证"),
    ("not_verified", "Not verified", "未验证"),
    ("verify", "Verify", "验证"),
    ("delete", "Delete", "删除"),
    ("created", "Created", "创建时间"),
    ("last_check", "Last DNS check", "最近一次检查"),
    ("never", "never", "从未"),
    ("records", "DNS records to publish", "需要配置的 DNS 记录"),
    ("type", "Type", "类型"),
    ("host", "Host", "主机记录"),
    ("expected", "Expected value", "记录值"),
    ("current", "Current value", "当前值"),
    ("result", "Result", "结果"),
    ("pass", "pass", "通过"),
    ("fail", "fail", "未通过"),
    ("copy", "Copy", "复制"),
    ("copied", "Copied", "已复制"),
    ("senders", "Sender addresses", "发信地址"),
    ("sender", "Sender", "发信地址"),
    ("address", "Address", "地址"),
    ("sender_name", "Sender name", "发件人名称"),
    ("add_sender", "Add sender", "新建发信地址"),
    ("smtp_password", "SMTP password", "SMTP 密码"),
    ("set_password", "Set password", "设置密码"),
    ("set", "set", "已设置"),
    ("not_set", "not set", "未设置"),
    ("none_yet", "Nothing here yet.", "暂无数据。"),
    ("templates", "Templates", "邮件模板"),
    ("new_template", "New template", "新建模板"),
    ("name", "Name", "名称"),
    ("category", "Category", "类别"),
    ("review", "Review", "审核"),
    ("reasons", "Review reasons", "审核原因"),
    ("approved", "approved", "审核通过"),
    ("reviewing", "under review", "审核中"),
    ("rejected", "rejected", "审核未通过"),
    ("edit", "Edit", "编辑"),
    ("save", "Save", "保存"),
    ("html_body", "HTML body", "HTML 内容"),
    ("text_body", "Text body", "纯文本内容"),
    (
        "sample_data",
        "Sample TemplateData (JSON)",
        "示例变量 TemplateData（JSON）",
    ),
    ("subject", "Subject", "邮件主题"),
    ("preview", "Preview", "预览"),
    ("preview_html", "HTML preview", "HTML 预览"),
    ("preview_text", "Text preview", "纯文本预览"),
    ("approve", "Approve", "通过"),
    ("reject", "Reject", "拒绝"),
    ("reason", "Reason", "原因"),
    ("version", "Version", "版本"),
    ("send", "Send", "发送"),
    ("to", "To", "收件人"),
    ("template", "Template", "模板"),
    ("template_data", "TemplateData (JSON)", "模板变量（JSON）"),
    ("text", "Text", "正文"),
    ("search", "Search", "查询"),
    ("date", "Day (UTC)", "日期（UTC）"),
    ("message_id", "MessageId", "MessageId"),
    ("recipient", "Recipient", "收件人"),
    ("accepted", "Accepted", "已受理"),
    ("attempts", "Attempts", "尝试次数"),
    ("reply", "Receiver's reply", "对方服务器回复"),
    ("timeline", "Timeline", "投递时间线"),
    ("time", "Time", "时间"),
    ("event", "Event", "事件"),
    ("detail", "Detail", "详情"),
    ("attempt", "Delivery attempt", "投递尝试"),
    ("ds_0", "queued", "排队中"),
    ("ds_1", "delivered", "已送达"),
    ("ds_2", "dropped", "已丢弃"),
    ("ds_3", "rejected", "被拒收"),
    ("ds_8", "deferred", "延迟重试"),
    ("ev_1", "delivered", "送达"),
    ("ev_2", "dropped", "丢弃"),
    ("ev_3", "bounced", "退信"),
    ("ev_4", "opened", "打开"),
    ("ev_5", "clicked", "点击"),
    ("ev_6", "complaint", "投诉"),
    ("ev_7", "unsubscribed", "退订"),
    ("ev_8", "deferred", "延迟"),
    ("ev_9", "sent (SES)", "已发送 (SES)"),
    ("ev_10", "rejected (SES)", "已拒绝 (SES)"),
    ("ev_11", "rendering failed (SES)", "渲染失败 (SES)"),
    ("ev_12", "subscription changed (SES)", "订阅变更 (SES)"),
    ("lists", "Recipient lists", "收件人列表"),
    ("new_list", "Upload a list", "上传收件人列表"),
    (
        "csv_file",
        "CSV file (email or email,TemplateData)",
        "CSV 文件（email 或 email,TemplateData）",
    ),
    ("or_paste", "or paste the lines", "或直接粘贴"),
    ("upload", "Upload", "上传"),
    ("valid", "Valid", "有效"),
    ("invalid", "Invalid", "无效"),
    ("tasks", "Batch tasks", "批量发送任务"),
    ("new_task", "New batch task", "新建发送任务"),
    ("list", "List", "收件人列表"),
    ("when", "When", "发送方式"),
    ("immediate", "now", "立即发送"),
    ("scheduled", "at a time (UTC)", "定时发送（UTC）"),
    ("recurring", "every N hours", "周期发送"),
    (
        "begin",
        "Begin (YYYY-MM-DD HH:MM:SS)",
        "开始时间（YYYY-MM-DD HH:MM:SS）",
    ),
    ("interval", "Interval, hours", "间隔（小时）"),
    ("progress", "Progress", "进度"),
    ("start", "Start", "开始发送"),
    ("pause", "Pause", "暂停"),
    ("resume", "Resume", "继续"),
    ("cancel", "Cancel", "取消"),
    ("ts_1", "waiting to start", "待开始"),
    ("ts_5", "sending", "发送中"),
    ("ts_6", "paused: today's quota used", "今日额度已用完，暂停"),
    ("ts_7", "error", "发送异常"),
    ("ts_8", "paused", "已暂停"),
    ("ts_9", "cancelled", "已取消"),
    ("ts_10", "done", "发送完成"),
    ("stats", "Statistics", "发信数据"),
    ("days", "Days", "天数"),
    ("all_domains", "all domains", "全部域名"),
    ("receiving", "Receiving mailbox domain", "收件邮箱类型"),
    ("filter", "Filter", "筛选"),
    ("requested", "requested", "请求"),
    ("delivered", "delivered", "送达"),
    ("bounced", "bounced", "退信"),
    ("opened", "opened", "打开"),
    ("clicked", "clicked", "点击"),
    ("unsubscribed", "unsubscribed", "退订"),
    ("complained", "complained", "投诉"),
    ("total", "Total", "合计"),
    ("reputation", "Reputation and quota", "信誉等级与额度"),
    ("level", "Level", "信誉等级"),
    ("daily_quota", "Daily quota", "每日额度"),
    ("sent_today", "Sent today", "今日已发"),
    ("remaining", "Remaining today", "今日剩余"),
    ("warmup", "Warm-up", "预热"),
    (
        "warmup_day",
        "day {day}: {allowance} today",
        "第 {day} 天：今日 {allowance}",
    ),
    ("warmup_done", "done", "已完成"),
    ("warnings", "Bounce-rate warnings", "退信率警告"),
    ("suppression", "Suppression", "黑名单"),
    ("custom_blacklist", "Custom blacklist", "自定义黑名单"),
    (
        "bounce_blacklist",
        "Bounce blacklist (caused by this account)",
        "退信黑名单（本账号导致）",
    ),
    (
        "expires",
        "Expires (YYYY-MM-DD, empty = never)",
        "过期日期（YYYY-MM-DD，空 = 永久）",
    ),
    ("add", "Add", "添加"),
    ("settings", "Settings", "设置"),
    ("callback_url", "Callback URL", "回调地址"),
    ("callback_secret", "Signing secret", "签名密钥"),
    ("send_test_event", "Send test event", "发送测试事件"),
    (
        "test_event_sent",
        "Test event delivered to the callback URL.",
        "测试事件已发送到回调地址。",
    ),
    ("console_users", "Console users", "控制台用户"),
    ("add_user", "Add console user", "新建控制台用户"),
    ("api_key", "API credential", "API 密钥"),
    ("api_keys", "API keys", "API 密钥管理"),
    (
        "api_keys_help",
        "Up to two keys are active at once: create a second key, move your clients to it, then revoke the old one.",
        "最多同时有两个有效密钥：先创建第二个密钥，将客户端切换过去，再吊销旧密钥。",
    ),
    (
        "manage_api_keys",
        "Manage API keys and unsubscribe defaults",
        "管理 API 密钥与退订默认设置",
    ),
    ("create_second_key", "Create second key", "创建第二个密钥"),
    (
        "new_key_once",
        "Copy the SecretKey now: it is shown only this once and cannot be retrieved later.",
        "请立即复制 SecretKey：它只显示这一次，之后无法再次查看。",
    ),
    ("last_used", "Last used", "最近使用"),
    ("key_active", "Active", "有效"),
    ("key_revoked_at", "Revoked", "已吊销"),
    ("revoke", "Revoke", "吊销"),
    (
        "revoke_confirm",
        "Revoke this key? Requests signed with it are refused from now on",
        "确定吊销此密钥？此后用它签名的请求都将被拒绝",
    ),
    ("key_revoked", "key revoked.", "密钥已吊销。"),
    (
        "unsubscribe_defaults",
        "Unsubscribe defaults per sender address",
        "各发信地址的退订默认设置",
    ),
    (
        "unsubscribe_defaults_help",
        "The Unsubscribe option (0-12, as in SendEmail) applied when a request gives none.",
        "请求未指定时使用的退订选项（0-12，同 SendEmail）。",
    ),
    ("unsubscribe_option", "Unsubscribe option", "退订选项"),
    ("in_force", "In force", "生效"),
    ("no_senders", "No sender addresses yet.", "尚无发信地址。"),
    (
        "csrf_refused",
        "This form was refused: it carries no valid security token. Reload the page and try again.",
        "表单被拒绝：缺少有效的安全令牌。请刷新页面后重试。",
    ),
    ("not_found", "Not found.", "未找到。"),
    ("saved", "Saved.", "已保存。"),
];

#[cfg(test)]
mod tests {
    use super::Lang;

    #[test]
    fn accept_language_picks_the_preferred_supported_language() {
        assert_eq!(Lang::from_accept_language(Some("zh-CN,zh;q=0.9,en;q=0.8")), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("en-US,en;q=0.9,zh;q=0.5")), Lang::En);
        assert_eq!(Lang::from_accept_language(Some("fr-FR,zh-TW;q=0.7,en;q=0.6")), Lang::Zh);
        assert_eq!(Lang::from_accept_language(Some("de")), Lang::En);
        assert_eq!(Lang::from_accept_language(None), Lang::En);
    }

    #[test]
    fn every_text_has_both_languages() {
        for (k, en, zh) in super::TEXTS {
            assert!(!en.is_empty() && !zh.is_empty(), "{k}");
        }
    }
}
