//! The `[outbound]` settings in the outbound core's own types: the country code of national
//! numbers and where complaint follow-ups go. Here rather than in `config` so that the config
//! knows no outbound rules (the arrow points from `outbound` to `config`).
//!
//! Must not know: SQL, the dialer.

use super::{ComplaintSettings, CountryCode};

impl crate::config::Outbound {
    /// `default_country_code` as the import and the dialer take it (validated at load; the
    /// default `44` if it is not valid, which `Config::parse` never lets through).
    pub fn country_code(&self) -> CountryCode {
        CountryCode::new(&self.default_country_code)
            .unwrap_or_else(|_| CountryCode::new("44").expect("44 is a country code"))
    }

    /// Where complaint follow-ups go: the complaint list (created with these settings on the
    /// first complaint) worked by `complaint_queue`, else by `call_queue` (the queue of the
    /// complaint call), in `time_zone` (the list's calling windows are local to it).
    pub fn complaint_settings(
        &self,
        time_zone: &str,
        call_queue: Option<&str>,
    ) -> ComplaintSettings {
        let queue = self
            .complaint_queue
            .clone()
            .or_else(|| call_queue.map(str::to_string));
        ComplaintSettings::new(
            &self.complaint_list,
            time_zone,
            queue,
            Vec::new(),
            self.country_code(),
        )
    }
}
