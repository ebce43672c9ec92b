package dev.pollen.node.server;

import com.google.protobuf.InvalidProtocolBufferException;
import dev.pollen.protocol.grpc.BlockServiceGrpcService;
import dev.pollen.protocol.grpc.InferenceRequest;
import dev.pollen.protocol.grpc.InferenceResponse;
import dev.pollen.protocol.grpc.InferenceStep;
import io.vertx.grpc.common.GrpcMessage;
import io.vertx.grpc.common.GrpcMessageDecoder;
import io.vertx.grpc.common.GrpcMessageEncoder;
import io.vertx.grpc.common.ServiceMethod;
import io.vertx.grpc.common.WireFormat;

/**
 * The Inference method with a decoder that never throws. Vert.x gRPC 5.0 resets a stream whose
 * message does not decode, without telling the handler; decoding leniently lets the server answer
 * {@code INVALID_ARGUMENT} with a sentence instead.
 */
final class LenientDecoding {
    /** Stands for a message that did not decode; compared by identity. */
    static final InferenceRequest UNDECODABLE = InferenceRequest.newBuilder()
            .setStep(InferenceStep.newBuilder().setStepId(Long.MIN_VALUE)).build();

    static final ServiceMethod<InferenceRequest, InferenceResponse> INFERENCE = ServiceMethod.server(
            BlockServiceGrpcService.SERVICE_NAME, "Inference", GrpcMessageEncoder.encoder(), new GrpcMessageDecoder<>() {
                @Override
                public InferenceRequest decode(GrpcMessage message) {
                    try {
                        return InferenceRequest.parseFrom(message.payload().getBytes());
                    } catch (InvalidProtocolBufferException e) {
                        return UNDECODABLE;
                    }
                }

                @Override
                public boolean accepts(WireFormat format) {
                    return format == WireFormat.PROTOBUF;
                }
            });

    private LenientDecoding() {
    }
}
