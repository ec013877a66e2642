//! The prompts of every queue, loaded and converted once at start (see [`super::prompt::load`]),
//! and the position announcement ("you are number 3 in the queue") assembled from the shipped
//! number words.

use super::prompt::{self, number_words, Prompt, PromptError, NUMBER_WORDS};
use crate::config::Config;
use std::collections::HashMap;
use std::path::PathBuf;

/// What a queue plays; cheap to clone (prompts share their samples).
#[derive(Debug, Clone, Default)]
pub struct QueueAudio {
    pub greeting: Option<Prompt>,
    pub hold_music: Option<Prompt>,
    pub announcement: Option<Prompt>,
    pub callback_offer: Option<Prompt>,
    pub callback_confirm: Option<Prompt>,
    pub survey_prompt: Option<Prompt>,
    pub survey_thanks: Option<Prompt>,
}

/// The position prompt set: intro, outro and number words.
#[derive(Debug, Clone, Default)]
pub struct PositionPrompts {
    intro: Option<Prompt>,
    outro: Option<Prompt>,
    words: HashMap<&'static str, Prompt>,
}

impl PositionPrompts {
    /// "You are number" + the number + "in the queue". Empty when the set is not loaded.
    pub fn announce(&self, position: u32) -> Vec<Prompt> {
        let (Some(intro), Some(outro)) = (&self.intro, &self.outro) else {
            return Vec::new();
        };
        let mut out = vec![intro.clone()];
        out.extend(
            number_words(position)
                .into_iter()
                .filter_map(|w| self.words.get(w).cloned()),
        );
        out.push(outro.clone());
        out
    }
}

pub use super::prompt::position_files;

/// Every queue's audio, by queue name, plus the position prompts.
#[derive(Debug, Clone, Default)]
pub struct Prompts {
    pub queues: HashMap<String, QueueAudio>,
    pub position: PositionPrompts,
}

impl Prompts {
    /// Load everything the config names (a file used by several queues is loaded once).
    pub fn load(cfg: &Config) -> Result<Prompts, PromptError> {
        let mut cache: HashMap<PathBuf, Prompt> = HashMap::new();
        let mut get = |name: Option<&str>| -> Result<Option<Prompt>, PromptError> {
            let Some(name) = name else { return Ok(None) };
            let path = cfg.media.prompt_path(name);
            if let Some(p) = cache.get(&path) {
                return Ok(Some(p.clone()));
            }
            let p = prompt::load(&path)?;
            cache.insert(path, p.clone());
            Ok(Some(p))
        };
        let mut out = Prompts::default();
        for q in &cfg.queues {
            let audio = QueueAudio {
                greeting: get(q.greeting.as_deref())?,
                hold_music: get(q.hold_music.as_deref())?,
                announcement: get(q.announcement.as_deref())?,
                callback_offer: get(q.callback_offer.as_deref())?,
                callback_confirm: get(q.callback_confirm.as_deref())?,
                survey_prompt: get(q.survey_prompt.as_deref())?,
                survey_thanks: get(q.survey_thanks.as_deref())?,
            };
            out.queues.insert(q.name.clone(), audio);
        }
        if cfg.queues.iter().any(|q| q.announce_position) {
            out.position.intro = get(Some("position-intro.wav"))?;
            out.position.outro = get(Some("position-outro.wav"))?;
            for &w in NUMBER_WORDS {
                if let Some(p) = get(Some(&format!("numbers/{w}.wav")))? {
                    out.position.words.insert(w, p);
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shipped() -> Config {
        let mut cfg = Config::default();
        cfg.media.prompts_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("prompts/en");
        cfg
    }

    #[test]
    fn position_announcement_uses_the_number_words() {
        let mut cfg = shipped();
        let text = std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/ctid.toml"),
        )
        .unwrap();
        let parsed = Config::parse(&text).unwrap();
        cfg.queues = parsed.queues;
        for q in &mut cfg.queues {
            q.announce_position = true;
        }
        let p = Prompts::load(&cfg).unwrap();
        let words = number_words(23);
        let a = p.position.announce(23);
        assert_eq!(a.len(), words.len() + 2, "intro + {words:?} + outro");
        assert_eq!(a[0].name(), p.position.intro.as_ref().unwrap().name());
        assert!(p.position.announce(1).len() >= 3);
    }

    #[test]
    fn every_position_file_is_shipped() {
        let cfg = shipped();
        for f in position_files() {
            assert!(cfg.media.prompt_path(&f).is_file(), "{f} is missing");
        }
    }
}
