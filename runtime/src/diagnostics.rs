//! Diagnostics for agreement checks between engines: how close a sample's sign decisions are
//! to flipping.

use bnas_models::LayerOp;

use crate::error::RuntimeError;
use crate::plan::StoredBatchNorm;
use crate::Model;

/// The values that the sign decisions of one NCHW sample compare with zero: every binarized
/// input after its BatchNorm, computed in f64 from the traced f32 inputs. A value near zero
/// is a decision that rounding could flip between engines (agreement checks excuse such
/// examples). Exact zeros of statically zero inputs through a BatchNorm with zero mean and
/// shift are left out: every engine computes them exactly.
pub fn sign_margins(model: &Model, input: &[f32]) -> Result<Vec<f64>, RuntimeError> {
    let trace = model.trace(input)?;
    let spec = model.spec();
    let mut margins = Vec::new();
    for layer in spec.live_layers().filter(|l| l.precision.binarizes_input()) {
        let LayerOp::Conv(conv) = &layer.op else { continue };
        let source = layer.inputs[0];
        let shape = spec.layers[source].output;
        let zeros;
        let x: &[f32] = match trace.layers.iter().find(|t| t.layer == source) {
            Some(traced) => &traced.output,
            None if source == 0 => input,
            None => {
                zeros = vec![0.0; shape.numel() as usize];
                &zeros
            }
        };
        let bn = conv
            .input_bn
            .as_ref()
            .map(|bn| StoredBatchNorm::read(model.file(), bn, model.metadata().bn_eps))
            .transpose()?;
        let params = bn.as_ref().map(StoredBatchNorm::params);
        let pixels = shape.height * shape.width;
        for (i, &v) in x.iter().enumerate() {
            let (c, mut y, mut structural) = (i / pixels, f64::from(v), v == 0.0);
            if let Some(bn) = &params {
                y = bn.apply(c, y);
                structural &= bn.mean[c] == 0.0 && bn.beta.is_none_or(|beta| beta[c] == 0.0);
            }
            if !structural {
                margins.push(y);
            }
        }
    }
    Ok(margins)
}
