//! Batched decoding on the tiny GGUF: a ragged step of several sequences gives, bit for bit,
//! the logits each sequence gets alone; the batching [`Generator`] streams the same tokens as
//! one-sequence greedy decoding, refuses bad requests on submission, and survives a dropped
//! stream.

use std::sync::Arc;

use provdb_inference::llama::{
    FinishReason, GenerationEvent, GenerationRequest, Generator, GeneratorOptions, Llama,
    LlamaModel, LogitsWanted, SamplingParams, Sequence, StepInput,
};

use crate::tiny_llama::write_gguf;

fn tiny() -> (tempfile::TempDir, Arc<LlamaModel>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tiny.gguf");
    write_gguf(&path, 16);
    let model = LlamaModel::load(&path).unwrap();
    (dir, model)
}

fn prompts(model: &LlamaModel) -> Vec<Vec<u32>> {
    ["hehe", "<|im_start|>he 1", "42 he he 7 x"]
        .iter()
        .map(|t| model.encode(t).unwrap())
        .collect()
}

#[test]
fn a_ragged_batch_step_equals_each_sequence_alone_bit_for_bit() {
    let (_dir, model) = tiny();
    let prompts = prompts(&model);
    // Alone: prefill, then two decode steps with fixed tokens.
    let alone: Vec<Vec<Vec<f32>>> = prompts
        .iter()
        .map(|p| {
            let mut session = Llama::new(Arc::clone(&model));
            vec![
                session.prefill(p).unwrap(),
                session.decode_step(5, p.len()).unwrap(),
                session.decode_step(9, p.len() + 1).unwrap(),
            ]
        })
        .collect();
    // Together: one step with the three prompts, then two steps with one token each.
    let mut sequences: Vec<Sequence> = prompts.iter().map(|_| Sequence::new()).collect();
    let mut together: Vec<Vec<Vec<f32>>> = vec![Vec::new(); prompts.len()];
    let steps: [Vec<Vec<u32>>; 3] = [prompts.clone(), vec![vec![5]; 3], vec![vec![9]; 3]];
    for tokens in &steps {
        let mut inputs: Vec<StepInput<'_>> = sequences
            .iter_mut()
            .zip(tokens)
            .map(|(sequence, tokens)| StepInput {
                sequence,
                tokens,
                logits: LogitsWanted::Last,
            })
            .collect();
        for (all, mut logits) in together.iter_mut().zip(model.forward(&mut inputs).unwrap()) {
            all.push(logits.remove(0));
        }
    }
    assert_eq!(together, alone);
    assert_eq!(sequences[2].len(), prompts[2].len() + 2);
}

#[test]
fn the_generator_streams_what_one_sequence_decoding_produces() {
    let (_dir, model) = tiny();
    let prompts = prompts(&model);
    let max_tokens = 6;
    let expected: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| {
            Llama::new(Arc::clone(&model))
                .greedy(p, max_tokens)
                .unwrap()
        })
        .collect();
    let generator = Generator::new(
        Arc::clone(&model),
        GeneratorOptions {
            max_batch: 2, // fewer slots than requests: the third waits for a free one
            threads: Some(2),
        },
    )
    .unwrap();
    let params = SamplingParams {
        max_tokens,
        ..SamplingParams::default()
    };
    let requests = prompts
        .iter()
        .map(|p| GenerationRequest {
            adapters: Default::default(),
            prompt: p.clone(),
            params,
        })
        .collect();
    let streams = generator.generate(requests).unwrap();
    for (stream, expected) in streams.into_iter().zip(&expected) {
        let events: Vec<GenerationEvent> = stream.collect();
        let ids: Vec<u32> = events
            .iter()
            .filter_map(|e| match e {
                GenerationEvent::Token { id, .. } => Some(*id),
                _ => None,
            })
            .collect();
        assert_eq!(&ids, expected, "streamed tokens");
        let reason = if model.end_of_turn().contains(expected.last().unwrap()) {
            FinishReason::EndOfTurn
        } else {
            FinishReason::MaxTokens
        };
        assert_eq!(
            events.last(),
            Some(&GenerationEvent::Done {
                tokens: expected.clone(),
                reason
            })
        );
    }
}

#[test]
fn bad_requests_are_refused_on_submission_and_a_dropped_stream_cancels_only_itself() {
    let (_dir, model) = tiny();
    let generator = Generator::new(Arc::clone(&model), GeneratorOptions::default()).unwrap();
    let ok = model.encode("hehe").unwrap();
    let request = |prompt: Vec<u32>, max_tokens: usize, temperature: f64| GenerationRequest {
        adapters: Default::default(),
        prompt,
        params: SamplingParams {
            max_tokens,
            temperature,
            ..SamplingParams::default()
        },
    };
    let refused = |r: GenerationRequest| generator.submit(r).err().unwrap().to_string();
    assert!(refused(request(Vec::new(), 4, 0.0)).contains("empty prompt"));
    assert!(refused(request(ok.clone(), 64, 0.0)).contains("context of 64"));
    assert!(refused(request(ok.clone(), 4, -1.0)).contains("temperature"));
    assert!(refused(request(vec![100_000], 4, 0.0)).contains("outside the vocabulary"));
    drop(generator.submit(request(ok.clone(), 20, 0.7)).unwrap());
    let (tokens, _) = generator
        .submit(request(ok.clone(), 5, 0.0))
        .unwrap()
        .finish()
        .unwrap();
    assert_eq!(tokens, Llama::new(model).greedy(&ok, 5).unwrap());
}
