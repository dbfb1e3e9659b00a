//! authentication.k8s.io/v1 TokenReview: created and answered, never stored
//! ([`crate::token_review`]); the kind exists so that the catalogue entry has one.

use super::Kind;

/// A TokenReview never reaches the generic create; this answers if one did.
pub static TOKEN_REVIEWS: Kind = Kind::new(
    pernode_resources::AUTHENTICATION,
    "tokenreviews",
    |_, _, _, _| {
        Err(crate::error::ApiError::internal(
            "TokenReviews are answered, not stored",
        ))
    },
);
