//! Generated book covers: the title and the authors on a colour of the book's own, as SVG. The
//! data set's cover images live on another site (the CSP allows only our own), and a shelf of
//! coloured spines tells books apart at a glance better than a grid of text.

use sha2::{Digest, Sha256};

use crate::{
    domain::catalog::{BookDetail, BookSummary},
    ids::BookId,
    web::contrast::Rgb,
};

/// The drawing's size; pages show it at 2:3 at any size (`WIDTH` x `HEIGHT` attributes on the
/// `<img>` keep its space reserved while it loads).
pub const WIDTH: u32 = 200;
pub const HEIGHT: u32 = 300;

/// Changes whenever the drawing does, so that every cover's URL changes with it and browsers
/// holding last year's drawing (cached for a year) fetch the new one.
const DESIGN: &str = "cover-1";

/// Characters per line and lines, for the title (20 px serif) and the authors (13 px sans):
/// what fits in the 168 px between the margins, with room for wide letters.
const TITLE_WIDTH: usize = 15;
const TITLE_LINES: usize = 6;
const BYLINE_WIDTH: usize = 24;
const BYLINE_LINES: usize = 2;

/// Light enough to be a colour, dark enough for white text at 4.5:1 at every hue (a test
/// checks all 360).
const SATURATION: f64 = 0.45;
const LIGHTNESS: f64 = 0.30;

/// The cover's URL. The query is a digest of what the drawing shows: it changes when the title
/// or the authors do, so the route can tell browsers to keep a cover for a year.
pub fn href(book_id: BookId, title: &str, byline: &str) -> String {
    format!("/books/{book_id}/cover.svg?v={}", version(title, byline))
}

/// A book the pages show with its cover (`{{ book.cover_href() }}` in a template; the module
/// that renders it imports this trait).
pub trait WithCover {
    fn cover_href(&self) -> String;
}

impl WithCover for BookSummary {
    fn cover_href(&self) -> String {
        href(self.id, &self.title, &self.authors_line())
    }
}

impl WithCover for BookDetail {
    fn cover_href(&self) -> String {
        href(self.id, &self.book.title, &self.authors_line())
    }
}

/// A digest of the drawing's input (12 hex digits): the URL's version and the ETag.
pub fn version(title: &str, byline: &str) -> String {
    hex::encode(&digest(title, byline)[..6])
}

fn digest(title: &str, byline: &str) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [DESIGN, title, byline] {
        hasher.update(part.as_bytes());
        // A separator no text holds: ("ab", "c") and ("a", "bc") differ.
        hasher.update([0]);
    }
    hasher.finalize().into()
}

/// The book's colour: a hue of its own from the digest, the same on every page and node.
pub fn background(title: &str, byline: &str) -> Rgb {
    let bytes = digest(title, byline);
    let hue = u16::from_be_bytes([bytes[6], bytes[7]]) % 360;
    Rgb::from_hsl(f64::from(hue), SATURATION, LIGHTNESS)
}

/// The SVG document of a book's cover. Everything from the book is XML-escaped.
pub fn svg(title: &str, byline: &str) -> String {
    let fill = background(title, byline).hex();
    let title_lines = wrap(cover_title(title), TITLE_WIDTH, TITLE_LINES);
    let byline_lines = wrap(byline, BYLINE_WIDTH, BYLINE_LINES);
    let tspans = |lines: &[String], line_height: u32| {
        lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let dy = if i == 0 { 0 } else { line_height };
                format!(r#"<tspan x="24" dy="{dy}">{}</tspan>"#, escape(line))
            })
            .collect::<String>()
    };
    // The authors sit at the foot of the cover, their last line on the same baseline always.
    let byline_top = 272 - 17 * (byline_lines.len().max(1) as u32 - 1);
    format!(
        concat!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}">"#,
            r#"<rect width="{w}" height="{h}" fill="{fill}"/>"#,
            r##"<rect width="10" height="{h}" fill="#000" fill-opacity=".2"/>"##,
            r##"<rect x="24" y="30" width="40" height="3" fill="#fff" fill-opacity=".75"/>"##,
            r##"<text x="24" y="68" fill="#fff" font-family="Georgia, 'Times New Roman', serif" font-size="20" font-weight="700">{title}</text>"##,
            r##"<text x="24" y="{byline_top}" fill="#fff" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="13">{byline}</text>"##,
            "</svg>\n"
        ),
        w = WIDTH,
        h = HEIGHT,
        fill = fill,
        title = tspans(&title_lines, 25),
        byline_top = byline_top,
        byline = tspans(&byline_lines, 17),
    )
}

/// The title without the data set's series note: "Harry Potter and the Sorcerer's Stone
/// (Harry Potter, #1)" is "Harry Potter and the Sorcerer's Stone" on its cover.
fn cover_title(title: &str) -> &str {
    let title = title.trim();
    match title.rfind(" (") {
        Some(at) if title.ends_with(')') && title[at..].contains('#') && at > 0 => &title[..at],
        _ => title,
    }
}

/// Words in lines of at most `width` characters (a longer word is cut), at most `max_lines` of
/// them; text that does not fit ends in "…".
fn wrap(text: &str, width: usize, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word;
        loop {
            let (used, needed) = (line.chars().count(), word.chars().count());
            if used == 0 && needed <= width {
                line.push_str(word);
                break;
            }
            if used > 0 && used + 1 + needed <= width {
                line.push(' ');
                line.push_str(word);
                break;
            }
            if used > 0 {
                lines.push(std::mem::take(&mut line));
                continue;
            }
            // A word longer than a line: as much as fits, the rest on the next.
            let cut = word
                .char_indices()
                .nth(width)
                .map_or(word.len(), |(at, _)| at);
            lines.push(word[..cut].to_owned());
            word = &word[cut..];
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        let last = lines.last_mut().expect("max_lines is at least 1");
        let kept: String = last.chars().take(width - 1).collect();
        *last = format!("{}…", kept.trim_end());
    }
    lines
}

/// Text for an XML element or attribute: the five special characters escaped, and characters
/// XML 1.0 forbids (controls, U+FFFE, U+FFFF) dropped rather than breaking the document.
fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(' '),
            c if c.is_control() || c == '\u{FFFE}' || c == '\u{FFFF}' => {}
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::contrast::{AA_TEXT, ratio};

    #[test]
    fn titles_and_authors_are_xml_escaped() {
        let svg = svg(r#"Tom & Jerry <"Best" of 'em>"#, "A & B");
        assert!(svg.contains("Tom &amp;"), "{svg}");
        assert!(svg.contains("&lt;&quot;Best&quot;"), "{svg}");
        assert!(svg.contains("&apos;em&gt;"), "{svg}");
        assert!(svg.contains(">A &amp; B<"), "{svg}");
        assert!(!svg.contains("& ") && !svg.contains("<\""));
        assert_eq!(escape("a\u{1}b\u{FFFF}c"), "abc");
    }

    #[test]
    fn long_titles_wrap_and_end_in_an_ellipsis() {
        assert_eq!(
            wrap("Harry Potter and the Sorcerer's Stone", 15, 6),
            ["Harry Potter", "and the", "Sorcerer's", "Stone"]
        );
        let long = "word ".repeat(40);
        let lines = wrap(&long, 15, 3);
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with('…'), "{lines:?}");
        assert!(lines.iter().all(|line| line.chars().count() <= 15));
        // One word longer than a line is cut, at characters, not bytes.
        assert_eq!(wrap("ÀÀÀÀÀÀÀÀÀÀ", 4, 6), ["ÀÀÀÀ", "ÀÀÀÀ", "ÀÀ"]);
        assert!(wrap("   ", 15, 6).is_empty());
    }

    #[test]
    fn the_series_note_stays_off_the_cover() {
        assert_eq!(
            cover_title("Harry Potter and the Sorcerer's Stone (Harry Potter, #1)"),
            "Harry Potter and the Sorcerer's Stone"
        );
        assert_eq!(cover_title("Emma (Penguin)"), "Emma (Penguin)");
        assert_eq!(cover_title("(Series, #2)"), "(Series, #2)");
    }

    #[test]
    fn a_book_keeps_its_colour_and_its_version() {
        let colour = background("Dune", "Frank Herbert");
        assert_eq!(colour, background("Dune", "Frank Herbert"));
        assert_ne!(colour, background("Emma", "Jane Austen"));
        assert_eq!(
            href(BookId(7), "Dune", "Frank Herbert"),
            href(BookId(7), "Dune", "Frank Herbert")
        );
        assert_ne!(
            version("Dune", "Frank Herbert"),
            version("Dune", "F. Herbert")
        );
        assert_ne!(version("ab", "c"), version("a", "bc"));
    }

    #[test]
    fn white_text_is_readable_on_every_hue() {
        let white = Rgb(255, 255, 255);
        for hue in 0..360 {
            let background = Rgb::from_hsl(f64::from(hue), SATURATION, LIGHTNESS);
            let contrast = ratio(white, background);
            assert!(contrast >= AA_TEXT, "hue {hue}: {contrast:.2}");
        }
    }
}
