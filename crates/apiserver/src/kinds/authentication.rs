//! The kinds that are created and answered, never stored: authentication.k8s.io/v1
//! TokenReview ([`crate::token_review`]) and SelfSubjectReview, and the authorization.k8s.io/v1
//! access reviews ([`crate::access_review`]). The kinds exist so that the catalogue entries
//! have one.

use super::Kind;

/// A kind that never reaches the generic create; this answers if one did.
const fn answered(group: &'static str, plural: &'static str) -> Kind {
    Kind::new(group, plural, |_, _, _, _| {
        Err(crate::error::ApiError::internal(
            "reviews are answered, not stored",
        ))
    })
}

pub static SELF_SUBJECT_REVIEWS: Kind =
    answered(pernode_resources::AUTHENTICATION, "selfsubjectreviews");
pub static TOKEN_REVIEWS: Kind = answered(pernode_resources::AUTHENTICATION, "tokenreviews");
pub static LOCAL_SUBJECT_ACCESS_REVIEWS: Kind = answered(
    pernode_resources::AUTHORIZATION,
    "localsubjectaccessreviews",
);
pub static SELF_SUBJECT_ACCESS_REVIEWS: Kind =
    answered(pernode_resources::AUTHORIZATION, "selfsubjectaccessreviews");
pub static SELF_SUBJECT_RULES_REVIEWS: Kind =
    answered(pernode_resources::AUTHORIZATION, "selfsubjectrulesreviews");
pub static SUBJECT_ACCESS_REVIEWS: Kind =
    answered(pernode_resources::AUTHORIZATION, "subjectaccessreviews");
