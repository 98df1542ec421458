//! The orders of the catalog's lists.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// The default when there is a query: how well a book matches, popularity breaking ties.
    Relevance,
    /// Most-rated first.
    Popularity,
    /// Highest average rating first (unrated last), popularity breaking ties.
    Rating,
    Title,
    PriceLowToHigh,
    PriceHighToLow,
    /// Publication year, most recent first.
    Year,
    /// Most recently added to the shop first.
    Newest,
    /// Fewest copies first: the staff book list, to restock (not offered to shoppers).
    LowStock,
}

impl Sort {
    pub const ALL: [Sort; 8] = [
        Sort::Relevance,
        Sort::Popularity,
        Sort::Rating,
        Sort::Title,
        Sort::PriceLowToHigh,
        Sort::PriceHighToLow,
        Sort::Year,
        Sort::Newest,
    ];

    /// The value in the query string.
    pub fn key(self) -> &'static str {
        match self {
            Sort::Relevance => "relevance",
            Sort::Popularity => "popularity",
            Sort::Rating => "rating",
            Sort::Title => "title",
            Sort::PriceLowToHigh => "price",
            Sort::PriceHighToLow => "price_desc",
            Sort::Year => "year",
            Sort::Newest => "newest",
            Sort::LowStock => "low_stock",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Sort::Relevance => "Best match",
            Sort::Popularity => "Most popular",
            Sort::Rating => "Highest rated",
            Sort::Title => "Title (A-Z)",
            Sort::PriceLowToHigh => "Price (low to high)",
            Sort::PriceHighToLow => "Price (high to low)",
            Sort::Year => "Publication year (newest)",
            Sort::Newest => "Recently added",
            Sort::LowStock => "Lowest stock",
        }
    }

    /// The order of a list with or without a query: the best matches of a search, and the
    /// books most people read when browsing (not "11/22/63" and other titles that sort first).
    pub fn default_for(has_text: bool) -> Sort {
        if has_text {
            Sort::Relevance
        } else {
            Sort::Popularity
        }
    }

    /// The sort asked for; a missing or unknown value (a hand-edited URL) and relevance without
    /// a query fall back to the default, so the catalog still shows.
    pub fn resolve(key: Option<&str>, has_text: bool) -> Sort {
        Sort::ALL
            .into_iter()
            .find(|sort| Some(sort.key()) == key)
            .filter(|sort| has_text || *sort != Sort::Relevance)
            .unwrap_or(Sort::default_for(has_text))
    }

    /// The choices a list offers, its default first (no "best match" without a query).
    pub fn choices(has_text: bool) -> impl Iterator<Item = Sort> {
        let default = Sort::default_for(has_text);
        std::iter::once(default).chain(
            Sort::ALL
                .into_iter()
                .filter(move |sort| *sort != default && (has_text || *sort != Sort::Relevance)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_keys_round_trip() {
        for sort in Sort::ALL {
            assert_eq!(Sort::resolve(Some(sort.key()), true), sort);
        }
        assert_eq!(Sort::resolve(Some("bogus"), false), Sort::Popularity);
        assert_eq!(Sort::resolve(None, true), Sort::Relevance);
        // Relevance needs a query to be relevant to.
        assert_eq!(Sort::resolve(Some("relevance"), false), Sort::Popularity);
        assert!(Sort::choices(false).all(|sort| sort != Sort::Relevance));
    }
}
