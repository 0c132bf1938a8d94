//! One way of naming the options of a setting: `choice_enum!` makes an enum
//! whose variants have command-line names, with `FromStr` (an error that
//! lists the names), `Display` and serde's `Serialize` all from one table.

/// `choice_enum!(pub Name "what it is" { Variant = "name", ... })`.
#[macro_export]
macro_rules! choice_enum {
    ($(#[$meta:meta])* $vis:vis $name:ident $what:literal {
        $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
    }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
        $vis enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// Every option's name, in order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The option's name.
            pub fn name(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.name())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "unknown {} {s:?} (expected {})",
                        $what,
                        $crate::choice::one_of($name::NAMES)
                    )),
                }
            }
        }
    };
}

/// "a", "a or b", "a, b or c".
pub fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    crate::choice_enum!(Colour "colour" { Red = "red", DarkBlue = "dark-blue" });

    #[test]
    fn names_parse_and_print_alike() {
        for c in [Colour::Red, Colour::DarkBlue] {
            assert_eq!(c.to_string().parse::<Colour>(), Ok(c));
        }
        assert_eq!(
            "green".parse::<Colour>(),
            Err("unknown colour \"green\" (expected red or dark-blue)".to_string())
        );
        assert_eq!(super::one_of(&["a", "b", "c"]), "a, b or c");
        assert_eq!(
            serde_json::to_string(&Colour::DarkBlue).unwrap(),
            "\"dark-blue\""
        );
    }
}
