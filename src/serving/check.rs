//! The checks every model passes before it serves, trained now or read back from a store:
//! finite parameters, and no type that holds less than half a user.
//!
//! Must not import: anything of `src/serving` but its errors.

use crate::predictor::Predictor;

use super::error::TrainError;

/// Refuses a model with a non-finite parameter or a type that holds less than half a user.
pub fn check(model: &Predictor, n_users: usize) -> Result<(), TrainError> {
    if !model.is_finite() {
        return Err(TrainError::NonFinite);
    }
    for index in 0..model.k() {
        let weight = model.type_weight(index);
        let users = weight * n_users as f64;
        if users < 0.5 {
            return Err(TrainError::EmptyType {
                index,
                weight,
                users,
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Source;
    use crate::serving::train::{quick_settings, train};

    #[test]
    fn a_model_with_an_empty_type_or_a_nan_is_refused() {
        let mut go = |_: &_| std::ops::ControlFlow::Continue(());
        let served = train(&Source::Embedded, &quick_settings(), 1, &mut go).unwrap();
        let Predictor::Mixture(model) = served.predictor().clone() else {
            unreachable!("the quick settings train a mixture")
        };
        let n = 2000;
        let mut empty = model.clone();
        empty.mixture.weights[1] = 1e-6;
        let err = check(&Predictor::Mixture(empty), n).unwrap_err();
        assert!(
            matches!(err, TrainError::EmptyType { index: 1, .. }),
            "{err}"
        );
        let mut nan = model.clone();
        nan.mixture.means[[4, 0]] = f64::NAN;
        let err = check(&Predictor::Mixture(nan), n).unwrap_err();
        assert!(matches!(err, TrainError::NonFinite), "{err}");
        check(&Predictor::Mixture(model), n).unwrap();
    }
}
