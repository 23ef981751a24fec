//! `--color auto|always|never`, and NO_COLOR (https://no-color.org): whether what rowsec
//! writes to standard error (diagnostics, errors) is coloured.

use clap::ValueEnum;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Colour when standard error is a terminal, NO_COLOR is unset or empty and TERM is not dumb.
    Auto,
    Always,
    Never,
}

/// Whether to colour: the flag decides when it is explicit; `auto` asks the environment.
/// `no_color` and `term` are the variables' values, `terminal` whether stderr is one.
pub fn enabled(choice: ColorChoice, no_color: Option<&str>, term: Option<&str>, terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => no_color.is_none_or(str::is_empty) && term != Some("dumb") && terminal,
    }
}

/// `rowsec:` in bold red, for error lines.
pub fn prefix(color: bool) -> &'static str {
    if color {
        "\x1b[1;31mrowsec:\x1b[0m"
    } else {
        "rowsec:"
    }
}

#[cfg(test)]
mod tests {
    use super::{enabled, ColorChoice::*};

    #[test]
    fn auto_colours_a_terminal_unless_no_color_or_a_dumb_terminal() {
        assert!(enabled(Auto, None, Some("xterm"), true));
        assert!(enabled(Auto, Some(""), None, true), "an empty NO_COLOR is unset");
        assert!(!enabled(Auto, Some("1"), Some("xterm"), true));
        assert!(!enabled(Auto, None, Some("dumb"), true));
        assert!(!enabled(Auto, None, Some("xterm"), false));
    }

    #[test]
    fn an_explicit_flag_beats_the_environment() {
        assert!(enabled(Always, Some("1"), Some("dumb"), false));
        assert!(!enabled(Never, None, Some("xterm"), true));
    }
}
