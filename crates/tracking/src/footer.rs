//! The unsubscribe footer, in the language chosen by SendEmail's `Unsubscribe` option.

/// Tencent's `Unsubscribe` codes 1–12 (0 = no footer). mailpush maps them one to one to languages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FooterLanguage {
    /// 1: Simplified Chinese.
    ChineseSimplified = 1,
    /// 2: English.
    English = 2,
    /// 3: Traditional Chinese.
    ChineseTraditional = 3,
    /// 4: Spanish.
    Spanish = 4,
    /// 5: French.
    French = 5,
    /// 6: German.
    German = 6,
    /// 7: Japanese.
    Japanese = 7,
    /// 8: Korean.
    Korean = 8,
    /// 9: Arabic.
    Arabic = 9,
    /// 10: Thai.
    Thai = 10,
    /// 11: Indonesian.
    Indonesian = 11,
    /// 12: Vietnamese.
    Vietnamese = 12,
}

impl FooterLanguage {
    /// Every language, in code order.
    const ALL: [FooterLanguage; 12] = {
        use FooterLanguage::*;
        [
            ChineseSimplified,
            English,
            ChineseTraditional,
            Spanish,
            French,
            German,
            Japanese,
            Korean,
            Arabic,
            Thai,
            Indonesian,
            Vietnamese,
        ]
    };

    /// The language for code 1–12; `None` for 0 and anything else.
    pub fn from_code(code: u8) -> Option<FooterLanguage> {
        Self::ALL.into_iter().find(|l| *l as u8 == code)
    }

    /// (sentence, link text).
    fn words(self) -> (&'static str, &'static str) {
        use FooterLanguage::*;
        match self {
            ChineseSimplified => ("如果您不想再收到此类邮件，请", "退订"),
            English => ("If you no longer wish to receive these emails, you can", "unsubscribe"),
            ChineseTraditional => ("如果您不想再收到此類郵件，請", "退訂"),
            Spanish => ("Si ya no desea recibir estos correos, puede", "darse de baja"),
            French => (
                "Si vous ne souhaitez plus recevoir ces e-mails, vous pouvez",
                "vous désabonner",
            ),
            German => (
                "Wenn Sie diese E-Mails nicht mehr erhalten möchten, können Sie sich",
                "abmelden",
            ),
            Japanese => ("今後このメールの受信を希望されない場合は、", "配信停止"),
            Korean => ("더 이상 이 이메일을 받고 싶지 않으시면", "수신 거부"),
            Arabic => ("إذا كنت لا ترغب في تلقي هذه الرسائل، يمكنك", "إلغاء الاشتراك"),
            Thai => ("หากคุณไม่ต้องการรับอีเมลเหล่านี้อีก คุณสามารถ", "ยกเลิกการรับข่าวสาร"),
            Indonesian => (
                "Jika Anda tidak ingin menerima email ini lagi, Anda dapat",
                "berhenti berlangganan",
            ),
            Vietnamese => ("Nếu bạn không muốn nhận những email này nữa, bạn có thể", "hủy đăng ký"),
        }
    }
}

/// The HTML footer linking to `url` (which must not need escaping: mailpush's own token URL).
pub fn footer_html(lang: FooterLanguage, url: &str) -> String {
    let (sentence, link) = lang.words();
    format!("<div style=\"margin-top:24px;font-size:12px;color:#888\">{sentence} <a href=\"{url}\">{link}</a>.</div>")
}

/// The plain-text footer.
pub fn footer_text(lang: FooterLanguage, url: &str) -> String {
    let (sentence, link) = lang.words();
    format!("\r\n\r\n--\r\n{sentence} {link}: {url}\r\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_has_a_language() {
        for code in 1..=12 {
            let lang = FooterLanguage::from_code(code).unwrap();
            assert_eq!(lang as u8, code);
            assert!(footer_html(lang, "https://x/u/t").contains("href=\"https://x/u/t\""));
        }
        assert_eq!(FooterLanguage::from_code(0), None);
        assert_eq!(FooterLanguage::from_code(13), None);
    }
}
