//! Native neural networks as a PMML `NeuralNetwork`.
//!
//! - Inputs: a numeric feature is one `NeuralInput` computing `(x - mean) / std` with `Apply` (the same two
//!   operations as dipper); a categorical feature is one `NeuralInput` per category, a `NormDiscrete` (1 for that
//!   category, else 0). A code without a category name can never be set from a string input and is left out.
//! - Layers: one `NeuralLayer` per dense layer, a `Neuron` per output with its bias and one `Con` per input in
//!   input order (so the sums are dipper's), `activationFunction` `identity`, `rectifier`, `tanh` or `logistic`.
//! - Output: regression un-standardises the output neuron with a `NormContinuous` on the target (`raw * scale +
//!   offset`, exact up to rounding); a binary classifier applies the logistic to the output neuron (on the last
//!   layer, or a one-neuron layer after it) and a two-neuron identity layer gives `1 - p` and `p`; a multiclass
//!   one normalises the last layer (or an identity layer after it) with `softmax`. Each class is a
//!   `NeuralOutput` with a `NormDiscrete` on the target.
//!
//! dipper shifts softmax inputs by their maximum before exponentiating; PMML does not: equal up to rounding.
//! Missing inputs and unknown categories give no prediction, as dipper refuses them.

use crate::native::mlp::{MlpActivation, MlpBody, MlpInput, MlpOutput};

use super::xml::XmlWriter;
use super::{number, ExportError, Fields, Input, MissingInputs, Top};

pub(super) fn write(
    w: &mut XmlWriter,
    fields: &Fields,
    top: &Top,
    body: &MlpBody,
) -> Result<(), ExportError> {
    let function = if fields.is_classification() {
        "classification"
    } else {
        "regression"
    };
    w.start(
        "NeuralNetwork",
        &top.attrs(function, &[("activationFunction", "identity")]),
    );
    fields.top_mining_schema(w, MissingInputs::Refused);
    fields.top_output(w);

    // Input neurons: per encoded input position, the neuron id (None: a code that no string input sets).
    let mut ids: Vec<Option<String>> = Vec::new();
    w.start("NeuralInputs", &[]);
    for (j, (input, field)) in body.inputs.iter().zip(&fields.inputs).enumerate() {
        match (input, field) {
            (MlpInput::Standardize { mean, std }, Input::Continuous { name }) => {
                let id = format!("0/{}", ids.len());
                let mean = number(*mean, || format!("the mean of input '{name}'"))?;
                let std = number(*std, || format!("the std of input '{name}'"))?;
                w.start("NeuralInput", &[("id", &id)]);
                w.start(
                    "DerivedField",
                    &[("optype", "continuous"), ("dataType", "double")],
                );
                w.start("Apply", &[("function", "/")]);
                w.start("Apply", &[("function", "-")]);
                w.empty("FieldRef", &[("field", name)]);
                w.text("Constant", &[("dataType", "double")], &mean);
                w.end();
                w.text("Constant", &[("dataType", "double")], &std);
                w.end();
                w.end();
                w.end();
                ids.push(Some(id));
            }
            (MlpInput::OneHot { n_categories }, Input::Categorical { name, values }) => {
                for code in 0..*n_categories {
                    let Some(value) = values.get(code) else {
                        ids.push(None);
                        continue;
                    };
                    let id = format!("0/{}", ids.len());
                    w.start("NeuralInput", &[("id", &id)]);
                    w.start(
                        "DerivedField",
                        &[("optype", "continuous"), ("dataType", "double")],
                    );
                    w.empty("NormDiscrete", &[("field", name), ("value", value)]);
                    w.end();
                    w.end();
                    ids.push(Some(id));
                }
            }
            (_, field) => {
                return Err(ExportError::Unsupported(format!(
                    "input {j} of the network does not fit feature '{}'",
                    field.name()
                )))
            }
        }
    }
    w.end();

    let n_layers = body.layers.len();
    let k = fields.classes.len();
    for (l, layer) in body.layers.iter().enumerate() {
        let last = l + 1 == n_layers;
        let identity = layer.activation == MlpActivation::Identity;
        // The output transform goes into the last layer when its activation leaves room for it.
        let (activation, normalization) = match (last && identity, body.output) {
            (true, MlpOutput::Sigmoid) => ("logistic", None),
            (true, MlpOutput::Softmax) => ("identity", Some("softmax")),
            _ => (activation_name(layer.activation), None),
        };
        let n = layer.biases.len().to_string();
        let mut attrs = vec![("activationFunction", activation), ("numberOfNeurons", &n)];
        if let Some(nm) = normalization {
            attrs.push(("normalizationMethod", nm));
        }
        w.start("NeuralLayer", &attrs);
        let mut next = Vec::with_capacity(layer.biases.len());
        for (o, bias) in layer.biases.iter().enumerate() {
            let id = format!("{}/{o}", l + 1);
            let bias = number(*bias, || format!("bias {o} of layer {l}"))?;
            w.start("Neuron", &[("id", &id), ("bias", &bias)]);
            for (i, from) in ids.iter().enumerate() {
                let Some(from) = from else { continue };
                let weight = layer
                    .weights
                    .get(i)
                    .and_then(|row| row.get(o))
                    .ok_or_else(|| {
                        ExportError::Unsupported(format!("layer {l} lacks weight {i}->{o}"))
                    })?;
                let weight = number(*weight, || format!("weight {i}->{o} of layer {l}"))?;
                w.empty("Con", &[("from", from), ("weight", &weight)]);
            }
            w.end();
            next.push(Some(id));
        }
        w.end();
        ids = next;
    }
    let last_identity = body
        .layers
        .last()
        .is_some_and(|l| l.activation == MlpActivation::Identity);
    let mut layer_no = n_layers + 1;
    match body.output {
        MlpOutput::Identity => return regression_output(w, fields, body, &ids),
        MlpOutput::Sigmoid => {
            if !last_identity {
                let logistic = [Neuron::new("0", &[(0, "1")])];
                ids = extra_layer(w, &mut layer_no, &ids, "logistic", None, &logistic)?;
            }
            // p(first class) = 1 - p, p(second class) = p.
            let pair = [
                Neuron::new("1", &[(0, "-1")]),
                Neuron::new("0", &[(0, "1")]),
            ];
            ids = extra_layer(w, &mut layer_no, &ids, "identity", None, &pair)?;
        }
        MlpOutput::Softmax => {
            if !last_identity {
                let copy: Vec<Neuron> = (0..ids.len())
                    .map(|o| Neuron::new("0", &[(o, "1")]))
                    .collect();
                ids = extra_layer(w, &mut layer_no, &ids, "identity", Some("softmax"), &copy)?;
            }
        }
    }
    if ids.len() != k {
        return Err(ExportError::Unsupported(format!(
            "the network has {} outputs for {k} classes",
            ids.len()
        )));
    }
    w.start("NeuralOutputs", &[]);
    for (o, class) in fields.classes.iter().enumerate() {
        w.start("NeuralOutput", &[("outputNeuron", output_id(&ids, o)?)]);
        w.start(
            "DerivedField",
            &[("optype", "categorical"), ("dataType", fields.class_type)],
        );
        w.empty("NormDiscrete", &[("field", fields.label), ("value", class)]);
        w.end();
        w.end();
    }
    w.end();
    w.end();
    Ok(())
}

/// A neuron of a layer the exporter adds: its bias and its connections (index into the previous layer, weight).
struct Neuron<'a> {
    bias: &'a str,
    cons: Vec<(usize, &'a str)>,
}

impl<'a> Neuron<'a> {
    fn new(bias: &'a str, cons: &[(usize, &'a str)]) -> Self {
        Neuron {
            bias,
            cons: cons.to_vec(),
        }
    }
}

/// Writes a layer after the network's own; returns its neuron ids.
fn extra_layer(
    w: &mut XmlWriter,
    layer_no: &mut usize,
    ids: &[Option<String>],
    activation: &str,
    normalization: Option<&str>,
    neurons: &[Neuron],
) -> Result<Vec<Option<String>>, ExportError> {
    let n = neurons.len().to_string();
    let mut attrs = vec![("activationFunction", activation), ("numberOfNeurons", &n)];
    if let Some(nm) = normalization {
        attrs.push(("normalizationMethod", nm));
    }
    w.start("NeuralLayer", &attrs);
    let mut out = Vec::with_capacity(neurons.len());
    for (o, neuron) in neurons.iter().enumerate() {
        let id = format!("{layer_no}/{o}");
        w.start("Neuron", &[("id", &id), ("bias", neuron.bias)]);
        for (from, weight) in &neuron.cons {
            w.empty(
                "Con",
                &[("from", output_id(ids, *from)?), ("weight", weight)],
            );
        }
        w.end();
        out.push(Some(id));
    }
    w.end();
    *layer_no += 1;
    Ok(out)
}

/// Regression: the output neuron un-standardised by a `NormContinuous` on the target; closes the network.
fn regression_output(
    w: &mut XmlWriter,
    fields: &Fields,
    body: &MlpBody,
    ids: &[Option<String>],
) -> Result<(), ExportError> {
    let scale = body.output_scale;
    if scale == 0.0 {
        return Err(ExportError::Unsupported(
            "an output scale of 0 cannot be written as a NormContinuous".into(),
        ));
    }
    let offset = number(body.output_offset, || "the output offset".into())?;
    let top = number(body.output_offset + scale, || "offset + scale".into())?;
    let mut points = [(offset.as_str(), "0"), (top.as_str(), "1")];
    if scale < 0.0 {
        points.reverse();
    }
    w.start("NeuralOutputs", &[]);
    w.start("NeuralOutput", &[("outputNeuron", output_id(ids, 0)?)]);
    w.start(
        "DerivedField",
        &[("optype", "continuous"), ("dataType", "double")],
    );
    w.start("NormContinuous", &[("field", fields.label)]);
    for (orig, norm) in points {
        w.empty("LinearNorm", &[("orig", orig), ("norm", norm)]);
    }
    w.end();
    w.end();
    w.end();
    w.end();
    w.end();
    Ok(())
}

fn output_id(ids: &[Option<String>], o: usize) -> Result<&str, ExportError> {
    ids.get(o)
        .and_then(|id| id.as_deref())
        .ok_or_else(|| ExportError::Unsupported(format!("the network has no output {o}")))
}

fn activation_name(a: MlpActivation) -> &'static str {
    match a {
        MlpActivation::Identity => "identity",
        MlpActivation::Relu => "rectifier",
        MlpActivation::Tanh => "tanh",
        MlpActivation::Logistic => "logistic",
    }
}
