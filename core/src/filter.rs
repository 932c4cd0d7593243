//! Pomerium filter expressions for `DB.SYNCLATEST` (see the change-feed issue).
